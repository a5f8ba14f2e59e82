/*
 * test_buddy.c: unit tests of the lock-free buddy allocator (buddy.h) on
 * one thread: set-up and metadata size, the initial fully coalesced state,
 * every order, exhaustion and recovery, the placement calls, per-CPU
 * caches (no memory stranded in another CPU's cache), alloc_below at the
 * edges (order 0, limits at and next to the end of each free block,
 * against the locked buddy), the state-word
 * transitions as pure functions, and every class of bad input rejected
 * with its own code and no change of state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buddy.h"
#include "buddy_i.h"
#include "buddy_locked.h"
#include "check.h"

#define F BUDDY_FRAME_SIZE
#define NCPUS 2

struct env {
	struct buddy_region rg[3];
	unsigned nrg;
	struct buddy_zone *z;
	struct buddy_cpu *c0, *c1;
	void *meta;
};

static void env_init(struct env *e, const struct buddy_region *rg, unsigned n)
{
	memcpy(e->rg, rg, n * sizeof(*rg));
	e->nrg = n;
	size_t sz = buddy_meta_size(rg, n, NCPUS);
	CHECK_FATAL(sz != 0);
	e->meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(e->meta);
	CHECK_FATAL(buddy_zone_init(&e->z, e->meta, sz, rg, n, NCPUS) ==
		    BUDDY_OK);
	e->c0 = buddy_zone_cpu(e->z, 0);
	e->c1 = buddy_zone_cpu(e->z, 1);
}

/* One region of 64 frames at 0, both contexts' caches off (global path). */
static void env_init_global(struct env *e)
{
	static const struct buddy_region one = { 0, 64 * F };
	env_init(e, &one, 1);
	buddy_cpu_cache_enable(e->c0, false);
	buddy_cpu_cache_enable(e->c1, false);
}

/* Regions with holes; region 1 starts at an odd frame. */
static const struct buddy_region test_rg[3] = {
	{ 16 * F, 48 * F },    /* frames 16-63: blocks 16 (o4), 32 (o5) */
	{ 101 * F, 24 * F },   /* frames 101-124 */
	{ 1024 * F, 1024 * F } /* one order-10 block */
};

static uint64_t total_frames(void)
{
	return 48 + 24 + 1024;
}

static void check_zone(struct env *e, bool coalesced)
{
	uint64_t fr;
	int inv = buddy_zone_check(e->z, coalesced, &fr);
	if (inv)
		fprintf(stderr, "  B%d at frame %llu\n", inv,
			(unsigned long long)fr);
	CHECK_EQ(inv, 0);
}

static void test_state_word(void)
{
	uint16_t s = bst_make(BK_FREE, 7, 8);
	CHECK_EQ(bst_kind(s), BK_FREE);
	CHECK_EQ(bst_order(s), 7);
	CHECK_EQ(bst_stk(s), 8);
	uint16_t t = bst_with(s, BK_BUSY, 9);
	CHECK_EQ(bst_kind(t), BK_BUSY);
	CHECK_EQ(bst_order(t), 9);
	CHECK_EQ(bst_stk(t), 8); /* with() keeps the stack link */
	CHECK_EQ(bst_stk(bst_with_stk(t, 0)), 0);
	CHECK_EQ(bst_order(bst_with_stk(t, 0)), 9);
	CHECK(bst_is_head(s) && !bst_is_head(bst_make(BK_TAIL, 0, 3)));
	/* Every order and stack number fits without touching the kind. */
	for (unsigned o = 0; o <= BUDDY_MAX_ORDER; o++) {
		uint16_t w = bst_make(BK_CACHED, o, BUDDY_ORDERS);
		CHECK(bst_is(w, BK_CACHED, o) && bst_stk(w) == BUDDY_ORDERS);
		CHECK_EQ(w & BST_MARK, 0);
	}
}

static void test_init(void)
{
	struct env e;
	env_init(&e, test_rg, 3);
	unsigned kind, order;
	CHECK_EQ(buddy_zone_frame(e.z, 16 * F, &kind, &order), BUDDY_OK);
	CHECK(kind == BUDDY_FRAME_FREE && order == 4);
	CHECK_EQ(buddy_zone_frame(e.z, 32 * F, &kind, &order), BUDDY_OK);
	CHECK(kind == BUDDY_FRAME_FREE && order == 5);
	CHECK_EQ(buddy_zone_frame(e.z, 101 * F, &kind, &order), BUDDY_OK);
	CHECK(kind == BUDDY_FRAME_FREE && order == 0);
	CHECK_EQ(buddy_zone_frame(e.z, 102 * F, &kind, &order), BUDDY_OK);
	CHECK(kind == BUDDY_FRAME_FREE && order == 1);
	CHECK_EQ(buddy_zone_frame(e.z, 1024 * F, &kind, &order), BUDDY_OK);
	CHECK(kind == BUDDY_FRAME_FREE && order == 10);
	CHECK_EQ(buddy_zone_frame(e.z, 1025 * F, &kind, &order), BUDDY_OK);
	CHECK_EQ(kind, BUDDY_FRAME_TAIL);
	CHECK_EQ(buddy_zone_frame(e.z, 64 * F, &kind, &order), BUDDY_ERANGE);
	check_zone(&e, true);
	struct buddy_stats st;
	buddy_zone_stats(e.z, &st);
	CHECK_EQ(st.total_frames, total_frames());
	CHECK_EQ(st.free_frames, total_frames());
	/*
	 * The metadata figure the docs quote: 6 bytes an index + fixed. The
	 * indices: each region's first is congruent to its pfn mod 32 (16,
	 * then 64 + 5 = 69 for pfn 101, then 93 + 3 = 96 for pfn 1024), so
	 * 1120 indices for 1096 frames; the state words (2240 bytes) are
	 * already a whole number of lines.
	 */
	CHECK_EQ(buddy_meta_size(test_rg, 3, NCPUS),
		 sizeof(struct buddy_zone) + NCPUS * sizeof(struct buddy_cpu) +
			 1120 * BUDDY_META_FRAME_BYTES);
	/*
	 * Adjacent regions never share a line of indices (a unit of version
	 * 3): frames 0-3 at indices 0-3, frames 4-7 at 36-39 (the next line,
	 * at pfn 4's offset), 40 indices: state words 80 bytes, padded to 128,
	 * and 160 bytes of links.
	 */
	static const struct buddy_region adj[2] = { { 0, 4 * F },
						    { 4 * F, 4 * F } };
	CHECK_EQ(buddy_meta_size(adj, 2, NCPUS),
		 sizeof(struct buddy_zone) + NCPUS * sizeof(struct buddy_cpu) +
			 128 + 40 * 4);
	free(e.meta);
}

static void test_bad_config(void)
{
	struct buddy_zone *z;
	static char meta[1 << 16] __attribute__((aligned(64)));
	struct buddy_region bad[2] = { { 8 * F, 8 * F }, { 12 * F, 8 * F } };
	CHECK_EQ(buddy_meta_size(bad, 2, 1), 0); /* overlapping */
	CHECK_EQ(buddy_zone_init(&z, meta, sizeof(meta), bad, 2, 1),
		 BUDDY_EINVAL);
	struct buddy_region odd = { 8 * F + 1, 8 * F };
	CHECK_EQ(buddy_meta_size(&odd, 1, 1), 0); /* unaligned */
	struct buddy_region ok = { 8 * F, 8 * F };
	CHECK_EQ(buddy_meta_size(&ok, 1, 0), 0); /* no CPU */
	CHECK_EQ(buddy_zone_init(&z, meta + 8, sizeof(meta) - 8, &ok, 1, 1),
		 BUDDY_EINVAL); /* misaligned area */
	CHECK_EQ(buddy_zone_init(&z, meta, buddy_meta_size(&ok, 1, 1) - 1, &ok,
				 1, 1),
		 BUDDY_ENOSPC);
	CHECK_EQ(buddy_zone_init(&z, meta, sizeof(meta), &ok, 1, 1), BUDDY_OK);
	CHECK(buddy_zone_cpu(z, 1) == NULL);
}

/* Take everything as order-0 frames, then give it all back. */
static void test_exhaust(void)
{
	struct env e;
	env_init(&e, test_rg, 3);
	uint64_t n = total_frames(), a;
	uint64_t *got = malloc(n * sizeof(*got));
	uint8_t *seen = calloc(4096, 1);
	for (uint64_t i = 0; i < n; i++) {
		/* Alternate CPUs: each refills and strands in its cache. */
		CHECK_EQ(buddy_alloc(i & 1 ? e.c1 : e.c0, 0, &got[i]),
			 BUDDY_OK);
		CHECK(seen[got[i] / F] == 0);
		seen[got[i] / F] = 1;
	}
	CHECK_EQ(buddy_alloc(e.c0, 0, &a), BUDDY_ENOMEM);
	CHECK_EQ(buddy_alloc(e.c1, 3, &a), BUDDY_ENOMEM);
	check_zone(&e, false);
	for (uint64_t i = 0; i < n; i++)
		CHECK_EQ(buddy_free(i % 3 ? e.c0 : e.c1, got[i], 0), BUDDY_OK);
	buddy_zone_drain_all(e.c0);
	check_zone(&e, true);
	struct buddy_stats st;
	buddy_zone_stats(e.z, &st);
	CHECK_EQ(st.free_frames, n);
	CHECK_EQ(st.failed, 2);
	CHECK(st.merges > 0 && st.splits > 0);
	/* Fully coalesced again: the order-10 block is whole. */
	CHECK_EQ(buddy_alloc(e.c0, 10, &a), BUDDY_OK);
	CHECK_EQ(a, 1024 * F);
	CHECK_EQ(buddy_free(e.c0, a, 10), BUDDY_OK);
	free(got);
	free(seen);
	free(e.meta);
}

/* Memory in CPU 1's cache is found by CPU 0 before it fails. */
static void test_no_stranding(void)
{
	struct buddy_region one = { 0, 64 * F };
	struct env e;
	env_init(&e, &one, 1);
	uint64_t a[64], big;
	for (int i = 0; i < 64; i++)
		CHECK_EQ(buddy_alloc(e.c1, 0, &a[i]), BUDDY_OK);
	for (int i = 0; i < 64; i++)
		CHECK_EQ(buddy_free(e.c1, a[i], 0), BUDDY_OK);
	struct buddy_stats st;
	buddy_zone_stats(e.z, &st);
	CHECK(st.cached_frames > 0);
	CHECK_EQ(st.cached_frames + st.free_frames, 64);
	/* All 64 frames as one block: needs CPU 1's cache drained. */
	CHECK_EQ(buddy_alloc(e.c0, 6, &big), BUDDY_OK);
	CHECK_EQ(big, 0);
	CHECK_EQ(buddy_free(e.c0, big, 6), BUDDY_OK);
	/* And frame by frame from CPU 0 while CPU 1 holds a cache. */
	for (int i = 0; i < 64; i++)
		CHECK_EQ(buddy_alloc(e.c1, 0, &a[i]), BUDDY_OK);
	for (int i = 0; i < 32; i++)
		CHECK_EQ(buddy_free(e.c1, a[i], 0), BUDDY_OK);
	for (int i = 0; i < 32; i++)
		CHECK_EQ(buddy_alloc(e.c0, 0, &a[i]), BUDDY_OK);
	CHECK_EQ(buddy_alloc(e.c0, 0, &big), BUDDY_ENOMEM);
	for (int i = 0; i < 64; i++)
		CHECK_EQ(buddy_free(e.c0, a[i], 0), BUDDY_OK);
	buddy_zone_drain_all(e.c0);
	check_zone(&e, true);
	free(e.meta);
}

static void test_placement(void)
{
	struct env e;
	env_init(&e, test_rg, 3);
	uint64_t a;
	/* Below a limit: only region 0 or 1 fits under frame 128. */
	CHECK_EQ(buddy_alloc_below(e.c0, 3, 128 * F, &a), BUDDY_OK);
	CHECK(a + 8 * F <= 128 * F);
	CHECK_EQ(buddy_free(e.c0, a, 3), BUDDY_OK);
	CHECK_EQ(buddy_alloc_below(e.c0, 6, 128 * F, &a), BUDDY_ENOMEM);
	/* At an address: inside a free block, split around it. */
	CHECK_EQ(buddy_alloc_at(e.c0, 1030 * F, 1), BUDDY_OK);
	CHECK_EQ(buddy_alloc_at(e.c0, 1030 * F, 1), BUDDY_EBUSY);
	CHECK_EQ(buddy_alloc_at(e.c0, 1028 * F, 3), BUDDY_EALIGN);
	CHECK_EQ(buddy_alloc_at(e.c0, 1024 * F, 3), BUDDY_EBUSY);
	CHECK_EQ(buddy_alloc_at(e.c0, 1031 * F, 0), BUDDY_EBUSY);
	CHECK_EQ(buddy_alloc_at(e.c0, 1029 * F, 0), BUDDY_OK);
	CHECK_EQ(buddy_alloc_at(e.c0, 90 * F, 0), BUDDY_ERANGE);
	CHECK_EQ(buddy_alloc_at(e.c0, 112 * F, 4), BUDDY_ERANGE);
	check_zone(&e, false);
	CHECK_EQ(buddy_free(e.c0, 1030 * F, 1), BUDDY_OK);
	CHECK_EQ(buddy_free(e.c1, 1029 * F, 0), BUDDY_OK);
	CHECK_EQ(buddy_free(e.c0, 1029 * F, 0), BUDDY_EDOUBLE);
	/* Runs of every length fit and give their tail back. */
	for (uint64_t n = 1; n <= 300; n++) {
		CHECK_EQ(buddy_alloc_run(e.c0, n, &a), BUDDY_OK);
		struct buddy_stats st;
		buddy_zone_stats(e.z, &st);
		CHECK_EQ(st.free_frames + st.cached_frames, total_frames() - n);
		CHECK_EQ(buddy_free_run(e.c1, a, n), BUDDY_OK);
	}
	CHECK_EQ(buddy_alloc_run(e.c0, 0, &a), BUDDY_EINVAL);
	CHECK_EQ(buddy_alloc_run(e.c0, 2048, &a), BUDDY_ENOMEM);
	buddy_zone_drain_all(e.c0);
	check_zone(&e, true);
	free(e.meta);
}

/* Snapshot of every frame's kind and order, and the free count. */
static void snapshot(struct env *e, unsigned *out, uint64_t *freef)
{
	unsigned n = 0;
	for (unsigned i = 0; i < e->nrg; i++)
		for (uint64_t a = e->rg[i].base;
		     a < e->rg[i].base + e->rg[i].size; a += F) {
			unsigned k, o;
			buddy_zone_frame(e->z, a, &k, &o);
			out[n++] = k << 8 | o;
		}
	struct buddy_stats st;
	buddy_zone_stats(e->z, &st);
	*freef = st.free_frames + st.cached_frames;
}

static unsigned snap0[2048], snap1[2048];

/* call must return want, change no frame and no count, and be counted. */
#define REJECT(e, call, want, nrej)                                            \
	do {                                                                   \
		uint64_t f0_, f1_;                                             \
		struct buddy_stats st_;                                        \
		snapshot(e, snap0, &f0_);                                      \
		CHECK_EQ((call), want);                                        \
		snapshot(e, snap1, &f1_);                                      \
		CHECK(memcmp(snap0, snap1, sizeof(snap1)) == 0);               \
		CHECK_EQ(f0_, f1_);                                            \
		buddy_zone_stats((e)->z, &st_);                                \
		CHECK_EQ(st_.rejected, ++(nrej));                              \
	} while (0)

static void test_bad_input(void)
{
	struct env e;
	env_init(&e, test_rg, 3);
	uint64_t a0, a4, rej = 0, x;
	CHECK_EQ(buddy_alloc(e.c0, 0, &a0), BUDDY_OK);
	CHECK_EQ(buddy_alloc(e.c0, 4, &a4), BUDDY_OK);
	CHECK_EQ(buddy_alloc_at(e.c0, 1024 * F, 2), BUDDY_OK);
	REJECT(&e, buddy_free(e.c0, 70 * F, 0), BUDDY_ERANGE, rej);
	REJECT(&e, buddy_free(e.c0, 1 << 30, 0), BUDDY_ERANGE, rej);
	REJECT(&e, buddy_free(e.c0, 120 * F, 3), BUDDY_ERANGE, rej);
	REJECT(&e, buddy_free(e.c0, a0 + 8, 0), BUDDY_EALIGN, rej);
	REJECT(&e, buddy_free(e.c0, a4 + F, 4), BUDDY_EALIGN, rej);
	REJECT(&e, buddy_free(e.c0, a4, 3), BUDDY_EORDER, rej);
	REJECT(&e, buddy_free(e.c0, a4, 2), BUDDY_EORDER, rej);
	REJECT(&e, buddy_free(e.c0, 1024 * F, 3), BUDDY_EORDER, rej);
	REJECT(&e, buddy_free(e.c0, a4 + F, 0), BUDDY_ETAIL, rej);
	REJECT(&e, buddy_free(e.c0, 1026 * F, 1), BUDDY_ETAIL, rej);
	REJECT(&e, buddy_free(e.c0, 1032 * F, 3), BUDDY_EDOUBLE,
	       rej); /* a free head */
	REJECT(&e, buddy_free(e.c0, 1033 * F, 0), BUDDY_EDOUBLE,
	       rej); /* a tail of a free block */
	REJECT(&e, buddy_free(e.c0, a0, BUDDY_MAX_ORDER + 1), BUDDY_EINVAL,
	       rej);
	REJECT(&e, buddy_alloc_at(e.c0, a0, 40), BUDDY_EINVAL, rej);
	REJECT(&e, buddy_free_run(e.c0, a4, 0), BUDDY_EINVAL, rej);
	REJECT(&e, buddy_free_run(e.c0, a4, 17), BUDDY_EDOUBLE,
	       rej); /* 16 + 1: the frame after a4's block is free */
	REJECT(&e, buddy_free_run(e.c0, a4 + 8 * F, 8), BUDDY_ETAIL, rej);
	REJECT(&e, buddy_alloc(e.c0, BUDDY_MAX_ORDER + 1, &x), BUDDY_EINVAL,
	       rej);
	/* A double free, through the cache (order 0) and the core (4). */
	CHECK_EQ(buddy_free(e.c0, a0, 0), BUDDY_OK);
	CHECK_EQ(buddy_free(e.c1, a4, 4), BUDDY_OK);
	REJECT(&e, buddy_free(e.c0, a0, 0), BUDDY_EDOUBLE, rej);
	REJECT(&e, buddy_free(e.c1, a0, 0), BUDDY_EDOUBLE, rej);
	REJECT(&e, buddy_free(e.c0, a4, 4), BUDDY_EDOUBLE, rej);
	struct buddy_stats st;
	buddy_zone_stats(e.z, &st);
	CHECK_EQ(st.rejected_by[-BUDDY_EDOUBLE], 6);
	CHECK_EQ(st.rejected_by[-BUDDY_ERANGE], 3);
	CHECK_EQ(st.rejected_by[-BUDDY_ETAIL], 3);
	CHECK(buddy_alloc(NULL, 0, &x) == BUDDY_EINVAL);
	CHECK(strcmp(buddy_strerror(BUDDY_ETAIL), "tail frame of a block") ==
	      0);
	check_zone(&e, false);
	free(e.meta);
}

/* A context with its cache off keeps nothing back. */
static void test_cache_off(void)
{
	/*
	 * Ends like the test above (statistics, a zone check, free): each
	 * test builds and checks its own zone.
	 */
	struct buddy_region one = { 0, 64 * F };
	struct env e;
	env_init(&e, &one, 1);
	uint64_t a[8];
	buddy_cpu_cache_enable(e.c0, false);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(buddy_alloc(e.c0, (unsigned)i % 4, &a[i]), BUDDY_OK);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(buddy_free(e.c0, a[i], (unsigned)i % 4), BUDDY_OK);
	struct buddy_stats st;
	buddy_zone_stats(e.z, &st);
	CHECK_EQ(st.cached_frames, 0);
	CHECK_EQ(st.refills, 0);
	check_zone(&e, false); /* B8: the last frees are deferred */
	buddy_zone_coalesce(e.c0);
	check_zone(&e, true); /* then coalesced, with no drain */
	/* Turning it off drains what it held. */
	buddy_cpu_cache_enable(e.c1, true);
	CHECK_EQ(buddy_alloc(e.c1, 0, &a[0]), BUDDY_OK);
	CHECK_EQ(buddy_free(e.c1, a[0], 0), BUDDY_OK);
	buddy_zone_stats(e.z, &st);
	CHECK(st.cached_frames > 0);
	buddy_cpu_cache_enable(e.c1, false);
	buddy_zone_stats(e.z, &st);
	CHECK_EQ(st.cached_frames, 0);
	check_zone(&e, true);
	free(e.meta);
}

/*
 * Deferred coalescing (B8): a free outside the caches leaves its block
 * unmerged, so an alloc+free pair on a coalesced zone splits nothing after
 * the first; the zone is coalesced again on demand, and an allocation that
 * needs the merge gets it (ENOMEM stays exact).
 */
static void test_defer(void)
{
	struct env e;
	env_init_global(&e);
	uint64_t a, b, x;
	struct buddy_stats st;
	CHECK_EQ(buddy_alloc(e.c0, 0, &a), BUDDY_OK);
	CHECK_EQ(buddy_free(e.c0, a, 0), BUDDY_OK);
	buddy_zone_stats(e.z, &st);
	CHECK_EQ(st.splits, 6);
	CHECK_EQ(st.merges, 0);
	CHECK_EQ(st.free_blocks[0], 2); /* a and its buddy, unmerged */
	check_zone(&e, false);
	uint64_t fr;
	CHECK_EQ(buddy_zone_check(e.z, true, &fr), 6); /* not coalesced */
	for (int i = 0; i < 100; i++) {
		CHECK_EQ(buddy_alloc(e.c0, 0, &x), BUDDY_OK);
		CHECK_EQ(x, a); /* the deferred block, nothing split */
		CHECK_EQ(buddy_free(e.c0, x, 0), BUDDY_OK);
	}
	buddy_zone_stats(e.z, &st);
	CHECK_EQ(st.splits, 6);
	CHECK_EQ(st.merges, 0);
	/*
	 * A context takes its own deferred block back before the stacks,
	 * even with another context's deferred block on top of stack 0: c0
	 * and c1 each hold one of the two order-0 buddies, free them (c1
	 * last, so its block is on top), then each gets its own back.
	 */
	uint64_t z;
	CHECK_EQ(buddy_alloc(e.c0, 0, &x), BUDDY_OK);
	CHECK_EQ(x, a);
	CHECK_EQ(buddy_alloc(e.c1, 0, &z), BUDDY_OK);
	CHECK_EQ(z, a ^ F);
	CHECK_EQ(buddy_free(e.c0, a, 0), BUDDY_OK);
	CHECK_EQ(buddy_free(e.c1, z, 0), BUDDY_OK);
	check_zone(&e, false);
	CHECK_EQ(buddy_alloc(e.c0, 0, &x), BUDDY_OK);
	CHECK_EQ(x, a); /* not z, the stack's top */
	CHECK_EQ(buddy_alloc(e.c1, 0, &x), BUDDY_OK);
	CHECK_EQ(x, z);
	CHECK_EQ(buddy_free(e.c1, z, 0), BUDDY_OK);
	CHECK_EQ(buddy_free(e.c0, a, 0), BUDDY_OK);
	check_zone(&e, false);
	buddy_zone_coalesce(e.c0);
	check_zone(&e, true);
	CHECK_EQ(buddy_alloc(e.c0, 0, &x), BUDDY_OK); /* a deferred again */
	CHECK_EQ(x, a);
	CHECK_EQ(buddy_free(e.c0, x, 0), BUDDY_OK);
	/*
	 * Only a free of the block this context allocated last defers: the
	 * first of two merges at once (so the choice of blocks stays that of
	 * an eager buddy, and fragmentation with it).
	 */
	uint64_t y;
	CHECK_EQ(buddy_alloc(e.c0, 0, &x), BUDDY_OK);
	CHECK_EQ(buddy_alloc(e.c0, 0, &y), BUDDY_OK);
	CHECK_EQ(x ^ y, F);                         /* buddies */
	CHECK_EQ(buddy_free(e.c0, y, 0), BUDDY_OK); /* the last: deferred */
	buddy_zone_stats(e.z, &st);
	uint64_t m0 = st.merges;
	CHECK_EQ(buddy_free(e.c0, x, 0), BUDDY_OK); /* not the last: merges */
	buddy_zone_stats(e.z, &st);
	CHECK_EQ(st.merges, m0 + 6); /* up to the whole order-6 block */
	check_zone(&e, true);
	/* Another free of the order merges the deferred block first. */
	CHECK_EQ(buddy_alloc(e.c0, 1, &b), BUDDY_OK);
	CHECK_EQ(buddy_alloc(e.c0, 0, &x), BUDDY_OK);
	CHECK_EQ(buddy_free(e.c0, x, 0), BUDDY_OK);
	check_zone(&e, false);
	CHECK_EQ(buddy_free(e.c0, b, 1), BUDDY_OK);
	buddy_zone_coalesce(e.c0);
	check_zone(&e, true);
	buddy_zone_stats(e.z, &st);
	CHECK_EQ(st.free_blocks[6], 1);
	/*
	 * Every frame free, but one pair of order-0 buddies unmerged in
	 * c0's slot: an order-6 allocation from c1 must merge it (the other
	 * context's slot) and succeed.
	 */
	CHECK_EQ(buddy_alloc(e.c0, 0, &x), BUDDY_OK);
	CHECK_EQ(buddy_free(e.c0, x, 0), BUDDY_OK);
	buddy_zone_stats(e.z, &st);
	CHECK_EQ(st.free_blocks[0], 2);
	check_zone(&e, false);
	CHECK_EQ(buddy_alloc(e.c1, 6, &x), BUDDY_OK);
	CHECK_EQ(x, 0);
	CHECK_EQ(buddy_free(e.c0, x, 6), BUDDY_OK);
	buddy_zone_drain_all(e.c0);
	check_zone(&e, true);
	free(e.meta);
}

/*
 * The frames held in test_below_edges(): region 0 (16-63) keeps free
 * blocks 17 (o0), 20 (o2), 28 (o2), 32 (o0), 34 (o1), 36 (o2), 48 (o4);
 * region 1 (101-124) keeps 101, 103, 124 (o0), 108, 120 (o2); region 2
 * keeps 1537 (o0), 1538 (o1), ... 1792 (o8).
 */
static const struct {
	uint64_t pfn;
	unsigned order;
} below_hold[] = {
	{ 16, 0 },  { 18, 1 },  { 24, 2 },  { 33, 0 },   { 40, 3 },
	{ 102, 0 }, { 104, 2 }, { 112, 3 }, { 1024, 9 }, { 1536, 0 }
};

/*
 * One alloc_below on both allocators, same state: both fail, or both
 * succeed (the lock-free block aligned, ending by the limit); then the
 * blocks are freed again (the lock-free one through CPU 1's cache, which
 * the next calls must drain to stay exact).
 */
static void below_one(struct env *e, struct buddy_locked *ref, unsigned o,
		      uint64_t limit)
{
	uint64_t a = 0, ra = 0;
	int rc = buddy_alloc_below(e->c0, o, limit, &a);
	int rr = buddy_locked_alloc_below(ref, o, limit, &ra);
	if (rc != rr)
		fprintf(stderr,
			"  alloc_below(order %u, limit %#llx): %d, "
			"locked buddy %d\n",
			o, (unsigned long long)limit, rc, rr);
	CHECK_EQ(rc, rr);
	if (rc == BUDDY_OK) {
		CHECK(a + (F << o) <= limit);
		CHECK_EQ(a & ((F << o) - 1), 0);
		unsigned kind = 0, ko = 0;
		CHECK_EQ(buddy_zone_frame(e->z, a, &kind, &ko), BUDDY_OK);
		CHECK(kind == BUDDY_FRAME_ALLOC && ko == o);
		CHECK_EQ(buddy_free(e->c1, a, o), BUDDY_OK);
	}
	if (rr == BUDDY_OK)
		CHECK_EQ(buddy_locked_free(ref, ra, o), BUDDY_OK);
}

static void test_below_edges(void)
{
	struct env e;
	env_init(&e, test_rg, 3);
	size_t rs = buddy_locked_meta_size(test_rg, 3);
	void *rmeta = aligned_alloc(64, (rs + 63) & ~(size_t)63);
	struct buddy_locked *ref;
	CHECK_FATAL(rmeta &&
		    buddy_locked_init(&ref, rmeta, rs, test_rg, 3) == BUDDY_OK);
	for (unsigned i = 0; i < sizeof(below_hold) / sizeof(below_hold[0]);
	     i++) {
		uint64_t a = below_hold[i].pfn * F;
		CHECK_EQ(buddy_alloc_at(e.c0, a, below_hold[i].order),
			 BUDDY_OK);
		CHECK_EQ(buddy_locked_alloc_at(ref, a, below_hold[i].order),
			 BUDDY_OK);
	}
	/* Order 0 by hand: frame 17 is the lowest free frame. */
	uint64_t a;
	CHECK_EQ(buddy_alloc_below(e.c0, 0, 18 * F - 1, &a), BUDDY_ENOMEM);
	CHECK_EQ(buddy_alloc_below(e.c0, 0, 17 * F, &a), BUDDY_ENOMEM);
	CHECK_EQ(buddy_alloc_below(e.c0, 0, 0, &a), BUDDY_ENOMEM);
	CHECK_EQ(buddy_alloc_below(e.c0, 0, 18 * F, &a), BUDDY_OK);
	CHECK_EQ(a, 17 * F);
	CHECK_EQ(buddy_alloc_below(e.c0, 0, 18 * F, &a), BUDDY_ENOMEM);
	CHECK_EQ(buddy_free(e.c0, 17 * F, 0), BUDDY_OK); /* into a cache */
	CHECK_EQ(buddy_alloc_below(e.c1, 0, 18 * F, &a), BUDDY_OK);
	CHECK_EQ(a, 17 * F);
	CHECK_EQ(buddy_free(e.c1, 17 * F, 0), BUDDY_OK);
	/* The low part of a larger block: order 1 ending at 22 in 20-23. */
	CHECK_EQ(buddy_alloc_below(e.c0, 1, 22 * F, &a), BUDDY_OK);
	CHECK_EQ(a, 20 * F);
	CHECK_EQ(buddy_free(e.c0, a, 1), BUDDY_OK);
	CHECK_EQ(buddy_alloc_below(e.c0, 1, 22 * F - 1, &a), BUDDY_ENOMEM);
	/* Every free block's end, one byte and one frame either side. */
	static const int64_t delta[] = { -(int64_t)F, -1, 0, 1, (int64_t)F };
	unsigned edges = 0;
	/* Past a failed check the zone may be broken: stop there. */
	unsigned long failed = atomic_load(&check_failures);
	for (unsigned g = 0; g < 3 && atomic_load(&check_failures) == failed;
	     g++) {
		uint64_t p = test_rg[g].base / F;
		uint64_t end = p + test_rg[g].size / F;
		while (p < end && atomic_load(&check_failures) == failed) {
			unsigned kind = 0, ko = 0;
			CHECK_EQ(buddy_locked_frame(ref, p * F, &kind, &ko),
				 BUDDY_OK);
			uint64_t n = (uint64_t)1 << ko;
			if (kind == BUDDY_FRAME_FREE) {
				edges++;
				for (unsigned o = 0; o <= 5; o++)
					for (unsigned d = 0;
					     d < 5 &&
					     atomic_load(&check_failures) ==
						     failed;
					     d++)
						below_one(
							&e, ref, o,
							(p + n) * F +
								(uint64_t)delta
									[d]);
			}
			p += kind == BUDDY_FRAME_TAIL ? 1 : n;
		}
	}
	CHECK(edges >= 12);
	check_zone(&e, false);
	buddy_zone_drain_all(e.c0);
	check_zone(&e, true);
	free(rmeta);
	free(e.meta);
}

/*
 * A block that ends exactly at alloc_below's limit fits (buddy_fits()'s
 * <=), and the pass takes the smallest order that fits first: with a
 * free order-0 block ending at the limit and a free order-1 block below
 * it, the order-0 block is taken and nothing is split. (A pass that
 * refused the first would split the order-1 block; a failing pass's
 * look would find an exact fit later, so ENOMEM alone does not tell.)
 */
static void test_below_exact_end(void)
{
	static const struct {
		uint64_t frame;
		unsigned order;
	} held[] = { { 0, 1 }, { 2, 1 }, { 4, 1 },  { 6, 0 },
		     { 7, 0 }, { 8, 3 }, { 16, 4 }, { 32, 5 } };
	struct env e;
	uint64_t x;
	struct buddy_stats s0, s1;
	env_init_global(&e);
	for (unsigned i = 0; i < sizeof(held) / sizeof(held[0]); i++)
		CHECK_EQ(buddy_alloc_at(e.c0, held[i].frame * F, held[i].order),
			 BUDDY_OK);
	CHECK_EQ(buddy_free(e.c0, 0, 1), BUDDY_OK);     /* buddy 2-3 held */
	CHECK_EQ(buddy_free(e.c0, 7 * F, 0), BUDDY_OK); /* buddy 6 held */
	buddy_zone_stats(e.z, &s0);
	CHECK_EQ(s0.free_frames, 3);
	CHECK_EQ(buddy_alloc_below(e.c0, 0, 8 * F, &x), BUDDY_OK);
	CHECK_EQ(x, 7 * F);
	buddy_zone_stats(e.z, &s1);
	CHECK_EQ(s1.splits, s0.splits);
	CHECK_EQ(s1.free_blocks[1], 1);
	CHECK_EQ(buddy_free(e.c0, x, 0), BUDDY_OK);
	for (unsigned i = 1; i < sizeof(held) / sizeof(held[0]); i++)
		if (held[i].frame != 7)
			CHECK_EQ(buddy_free(e.c0, held[i].frame * F,
					    held[i].order),
				 BUDDY_OK);
	buddy_zone_drain_all(e.c0);
	check_zone(&e, true);
	buddy_zone_stats(e.z, &s1);
	CHECK_EQ(s1.free_frames, 64);
	free(e.meta);
}

/*
 * Spare slots (B4): a split on the global path leaves its halves free in
 * its context's slots, on no stack. Another context must find them (exact
 * ENOMEM: every frame of the zone is handed out before the first
 * failure), and so must the owner itself, one block at a time.
 */
static void test_spare(void)
{
	struct env e;
	env_init_global(&e);
	uint64_t a, x, held[64];
	struct buddy_stats st;
	CHECK_EQ(buddy_alloc(e.c0, 0, &a), BUDDY_OK);
	check_zone(&e, true); /* halves of orders 0-5: free, in c0's slots */
	/* The core's pass (alloc_below) finds the owner's own spares too. */
	CHECK_EQ(buddy_alloc_below(e.c0, 0, 64 * F, &x), BUDDY_OK);
	CHECK_EQ(x, a ^ F);
	CHECK_EQ(buddy_free(e.c0, x, 0), BUDDY_OK);
	check_zone(&e, false);
	unsigned n = 0;
	struct buddy_stats s0;
	buddy_zone_stats(e.z, &s0);
	for (unsigned o = 6; o-- > 0;) { /* c1 takes every one of them */
		CHECK_EQ(buddy_alloc(e.c1, o, &held[n]), BUDDY_OK);
		n++;
	}
	/*
	 * In its first pass (buddy_take_others()), not in a later one that
	 * sweeps or looks at the state words (which would find them too).
	 */
	buddy_zone_stats(e.z, &st);
	CHECK_EQ(st.sweeps, s0.sweeps);
	CHECK_EQ(buddy_alloc(e.c1, 0, &x), BUDDY_ENOMEM); /* all held */
	buddy_zone_stats(e.z, &st);
	CHECK_EQ(st.free_frames, 0);
	CHECK_EQ(buddy_free(e.c0, a, 0), BUDDY_OK);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(buddy_free(e.c1, held[i], 5 - i), BUDDY_OK);
	check_zone(&e, false);
	buddy_zone_drain_all(e.c0);
	check_zone(&e, true);
	/* The owner alone: 64 order-0 blocks, then ENOMEM, then all back. */
	for (n = 0; n < 64; n++)
		CHECK_EQ(buddy_alloc(e.c0, 0, &held[n]), BUDDY_OK);
	CHECK_EQ(buddy_alloc(e.c0, 0, &x), BUDDY_ENOMEM);
	for (unsigned i = 0; i < 64; i++) {
		CHECK_EQ(buddy_free(e.c0, held[i], 0), BUDDY_OK);
		if (i % 8 == 0)
			check_zone(&e, false);
	}
	buddy_zone_drain_all(e.c1);
	check_zone(&e, true);
	buddy_zone_stats(e.z, &st);
	CHECK_EQ(st.free_blocks[6], 1);
	free(e.meta);
}

/*
 * The core's pass takes its own context's spare at the smallest order
 * that fits before any stack of a larger order (buddy_take()): with a
 * free order-6 block on its stack (the second region's), alloc_below
 * with a limit above both gets the owner's order-0 spare, and splits
 * nothing. A pass that skipped the spares would split the order-6 block
 * (and a failing pass's look would only find the spare later).
 */
static void test_spare_first(void)
{
	static const struct buddy_region two[2] = { { 0, 64 * F },
						    { 128 * F, 64 * F } };
	struct env e;
	uint64_t a, x;
	struct buddy_stats st0, st1;
	env_init(&e, two, 2);
	buddy_cpu_cache_enable(e.c0, false);
	buddy_cpu_cache_enable(e.c1, false);
	CHECK_EQ(buddy_alloc(e.c0, 0, &a), BUDDY_OK);
	check_zone(&e, true); /* one region split into c0's spares */
	buddy_zone_stats(e.z, &st0);
	CHECK_EQ(st0.free_blocks[6], 1); /* the other region, on its stack */
	CHECK_EQ(buddy_alloc_below(e.c0, 0, 192 * F, &x), BUDDY_OK);
	CHECK_EQ(x, a ^ F);
	buddy_zone_stats(e.z, &st1);
	CHECK_EQ(st1.splits, st0.splits);
	CHECK_EQ(st1.free_blocks[6], 1);
	CHECK_EQ(buddy_free(e.c0, x, 0), BUDDY_OK);
	CHECK_EQ(buddy_free(e.c0, a, 0), BUDDY_OK);
	buddy_zone_drain_all(e.c0);
	check_zone(&e, true);
	buddy_zone_stats(e.z, &st1);
	CHECK_EQ(st1.free_frames, 128);
	CHECK_EQ(st1.free_blocks[6], 2);
	free(e.meta);
}

int main(void)
{
	test_defer();
	test_spare();
	test_spare_first();
	test_below_exact_end();
	test_cache_off();
	test_state_word();
	test_init();
	test_bad_config();
	test_exhaust();
	test_no_stranding();
	test_placement();
	test_below_edges();
	test_bad_input();
	return check_exit("test_buddy");
}
