/*
 * test_buddy_frag_v3.c: version 3's placement (lf_buddy_units,
 * docs/design.md 2.7, "Placement"; docs/v3-status.md item 16): where
 * units come down from the core and which partial unit a new
 * reservation takes. Properties of a deterministic single-thread
 * sequence, not timings.
 *
 * test_pick_fullest: every unit full and unreserved, then frames freed in
 * three units (isolated frames: all class 0), the fullest listed first
 * (at the bottom of the partial stack). The next allocation must come
 * from the fullest unit (fewest free frames), not the one listed last
 * (LIFO): the emptiest units get no new blocks, so that they drain and go
 * back to the core.
 *
 * test_gather: a random workload of orders 0-4 only (random slot, free,
 * allocate a random order in its place) on a zone of 2 MiB blocks. A
 * unit comes down from the core only as a whole free line or by the
 * core's best fit (the smallest free block first), so a 2 MiB block that
 * holds no lower unit is split only when no smaller free core block is
 * left: when every 2 MiB block already touched is made of lower units.
 * Hence, with L lower units (word != 0) and T 2 MiB blocks holding one,
 * after every operation T <= max over the run so far of ceil(L / 16),
 * plus one block for a free piece that a deferred free (B8) left split
 * in an otherwise untouched block (the best fit may take it first). The
 * zone's invariants (B1-B8) at the end, fully coalesced after the drain,
 * every frame free.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buddy_i.h"
#include "buddy_test.h"
#include "check.h"

_Static_assert(BUDDY_CORE_SHIFT == 5, "built over units");

#define U ((uint64_t)1 << BUDDY_CORE_SHIFT) /* frames per unit */
#define FS BUDDY_FRAME_SIZE
#define BLK 512 /* frames in a 2 MiB block */

static struct buddy_zone *zone_new_n(uint64_t base, uint64_t frames,
				     uint32_t ncpus, void **meta)
{
	struct buddy_region rg = { base, frames * FS };
	size_t sz = buddy_meta_size(&rg, 1, ncpus);
	CHECK_FATAL(sz != 0);
	*meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(*meta != NULL);
	struct buddy_zone *z;
	CHECK_FATAL(buddy_zone_init(&z, *meta, sz, &rg, 1, ncpus) == BUDDY_OK);
	/*
	 * Caches off (docs/v3-status.md item 37): this file's subject is the
	 * placement in the words (which unit a block comes from), which
	 * frees of orders 0-4 reach; with the per-CPU block caches on such a
	 * free stays in a cache (its block allocated in the word). The caches'
	 * own windows: test_buddy_cache_units.
	 */
	for (unsigned i = 0; i < ncpus; i++)
		buddy_cpu_cache_enable(buddy_zone_cpu(z, i), false);
	return z;
}

static struct buddy_zone *zone_new(uint64_t base, uint64_t frames, void **meta)
{
	return zone_new_n(base, frames, 1, meta);
}

/* The unit (core index) of the frame at addr. */
/* Everything freed: drained, whole and coalesced (B6), n frames free. */
static void zone_done(struct buddy_zone *z, struct buddy_cpu *c, uint64_t n,
		      void *meta)
{
	buddy_zone_drain_all(c);
	CHECK_EQ(check_zone(z, true), 0);
	struct buddy_stats st;
	buddy_zone_stats(z, &st);
	CHECK_EQ(st.free_frames, n);
	free(meta);
}

static uint32_t unit_of(struct buddy_zone *z, uint64_t addr)
{
	const struct buddy_rgn *r = &z->rgn[0];
	return buddy_cx(buddy_addr_idx(r, addr));
}

static unsigned unit_free(struct buddy_zone *z, uint32_t u)
{
	/* Relaxed: one thread. */
	return bu_free_frames(lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED));
}

static void test_pick_fullest(void)
{
	void *meta;
	const uint64_t n = 16 * U; /* 16 units */
	struct buddy_zone *z = zone_new(1ull << 30, n, &meta);
	struct buddy_cpu *c = buddy_zone_cpu(z, 0);
	uint64_t *a = malloc(n * sizeof(*a));
	CHECK_FATAL(a != NULL);
	for (uint64_t i = 0; i < n; i++)
		CHECK_EQ(buddy_alloc(c, 0, &a[i]), BUDDY_OK);
	uint64_t x;
	CHECK_EQ(buddy_alloc(c, 0, &x), BUDDY_ENOMEM);
	buddy_cpu_drain(c); /* every unit full, none reserved or listed */
	/* Three units, by their first frame: 2, 5 and 9 free frames. */
	uint64_t pick[3] = { a[0], a[5 * U], a[11 * U] };
	const unsigned nfree[3] = { 2, 5, 9 };
	uint32_t unit[3];
	for (unsigned j = 0; j < 3; j++) {
		unit[j] = unit_of(z, pick[j]);
		for (uint64_t i = 0; i < n; i++) {
			if (unit_of(z, a[i]) != unit[j])
				continue;
			/* Odd frames of the unit: isolated, class 0. */
			uint64_t off = (a[i] - buddy_rgn_addr(&z->rgn[0],
							      unit[j] * U)) /
				       FS;
			if (off % 2 == 1 && off / 2 < nfree[j]) {
				CHECK_EQ(buddy_free(c, a[i], 0), BUDDY_OK);
				a[i] = UINT64_MAX;
			}
		}
		CHECK_EQ(unit_free(z, unit[j]), nfree[j]);
	}
	/*
	 * The frees put the three units into this CPU's hand-over ring
	 * (v3-status item 44), whose own take would pick the fullest by
	 * itself: the drain lists them on the shared partial stack, in the
	 * order they were freed, where the pick is the subject.
	 */
	buddy_cpu_drain(c);
	CHECK_EQ(check_zone(z, false), 0);
	/* The fullest unit, listed first (LIFO would give the last). */
	CHECK_EQ(buddy_alloc(c, 0, &x), BUDDY_OK);
	CHECK_EQ(unit_of(z, x), unit[0]);
	CHECK_EQ(unit_free(z, unit[0]), nfree[0] - 1);
	CHECK_EQ(buddy_free(c, x, 0), BUDDY_OK);
	for (uint64_t i = 0; i < n; i++)
		if (a[i] != UINT64_MAX)
			CHECK_EQ(buddy_free(c, a[i], 0), BUDDY_OK);
	zone_done(z, c, n, meta);
	free(a);
}

/*
 * test_pick_huge: the core's pick among free blocks of order j (5-8) on
 * its stack (v3-status item 26). Three 2 MiB blocks A (units 0-15), B
 * (16-31) and C (32-47), every unit allocated at order 5 by context 1.
 * Context 1 frees a decoy unit in C first (it stays in its spare slot,
 * off the stacks), then in B the units of one order-j block at unit 16
 * (B: 2^j free frames), then in A the units of one order-j block at unit
 * 0 and the isolated unit after its buddy (A: 2^j + 32 free frames).
 * Stack j holds A's block on top and B's below it. Context 0 (no spare)
 * allocates order kalloc: order j from stack j directly, or (j = 5,
 * kalloc 0) a frame, for which a unit comes down from the core. It must
 * come from B's block, whose 2 MiB block is the fuller one; LIFO would
 * take A's.
 */
static void test_pick_huge(unsigned j, unsigned kalloc)
{
	void *meta;
	const uint64_t n = 3 * BLK, nu = n / U;
	const uint64_t base = 1ull << 30; /* 2 MiB-aligned */
	struct buddy_zone *z = zone_new_n(base, n, 2, &meta);
	CHECK_FATAL(z->rgn[0].idx == 0);
	struct buddy_cpu *c0 = buddy_zone_cpu(z, 0), *c1 = buddy_zone_cpu(z, 1);
	uint64_t a[3 * BLK / U], x;
	bool held[3 * BLK / U];
	for (uint64_t i = 0; i < nu; i++) {
		CHECK_EQ(buddy_alloc(c1, BUDDY_CORE_SHIFT, &x), BUDDY_OK);
		uint64_t u = (x - base) / (U * FS);
		CHECK_FATAL(u < nu);
		a[u] = x;
		held[u] = true;
	}
	const uint32_t bu = 1u << (j - BUDDY_CORE_SHIFT); /* units a block */
	uint32_t order[64], m = 0;
	order[m++] = 32; /* the decoy, into context 1's spare slot */
	for (uint32_t i = 0; i < bu; i++)
		order[m++] = 16 + i; /* B's block */
	for (uint32_t i = 0; i < bu; i++)
		order[m++] = i; /* A's block */
	order[m++] = bu + 1;    /* A's isolated unit */
	for (uint32_t i = 0; i < m; i++) {
		CHECK_EQ(buddy_free(c1, a[order[i]], BUDDY_CORE_SHIFT),
			 BUDDY_OK);
		held[order[i]] = false;
	}
	CHECK_EQ(check_zone(z, false), 0);
	CHECK_EQ(buddy_alloc(c0, kalloc, &x), BUDDY_OK);
	uint64_t got = (x - base) / (U * FS);
	if (got < 16 || got >= 16 + bu)
		fprintf(stderr,
			"pick_huge j %u k %u: unit %" PRIu64 ", not in "
			"B's block 16..%u\n",
			j, kalloc, got, 15 + bu);
	CHECK(got >= 16 && got < 16 + bu);
	CHECK_EQ(check_zone(z, false), 0); /* the others still listed (B4) */
	CHECK_EQ(buddy_free(c0, x, kalloc), BUDDY_OK);
	for (uint64_t i = 0; i < nu; i++)
		if (held[i])
			CHECK_EQ(buddy_free(c1, a[i], BUDDY_CORE_SHIFT),
				 BUDDY_OK);
	buddy_zone_drain_all(c1);
	zone_done(z, c0, n, meta);
}

/* Lower units (*l) and 2 MiB blocks holding one (returned). */
static unsigned touched(struct buddy_zone *z, unsigned nblk, unsigned *l)
{
	unsigned t = 0;
	*l = 0;
	for (unsigned b = 0; b < nblk; b++) {
		unsigned n = 0;
		for (uint32_t u = b * (BLK / U); u < (b + 1) * (BLK / U); u++)
			/* Relaxed: one thread. */
			n += lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED) !=
			     BU_CORE;
		*l += n;
		t += n != 0;
	}
	return t;
}

static void test_gather(uint64_t seed, unsigned nblk, unsigned nslots,
			unsigned ops)
{
	void *meta;
	const uint64_t n = (uint64_t)nblk * BLK;
	/* 2 MiB-aligned in pfn and in index (the region's first unit 0). */
	struct buddy_zone *z = zone_new(1ull << 30, n, &meta);
	CHECK_FATAL(z->rgn[0].idx == 0);
	struct buddy_cpu *c = buddy_zone_cpu(z, 0);
	uint64_t *a = calloc(nslots, sizeof(*a));
	int *k = malloc(nslots * sizeof(*k));
	CHECK_FATAL(a != NULL && k != NULL);
	uint64_t rng = seed * 0x9e3779b97f4a7c15ull + 1;
	unsigned l, t, bound = 0, tmax = 0, done = 0;
	for (unsigned i = 0; i < nslots; i++)
		k[i] = -1;
	for (unsigned op = 0; op < ops; op++) {
		unsigned i = (unsigned)(rnd(&rng) % nslots);
		if (k[i] >= 0)
			CHECK_EQ(buddy_free(c, a[i], (unsigned)k[i]), BUDDY_OK);
		/* Order j with probability 2^-(j+1), 4 with the rest. */
		uint64_t r = rnd(&rng);
		unsigned j = 0;
		while (j < BU_MAX_ORDER && (r >> j & 1) == 0)
			j++;
		k[i] = buddy_alloc(c, j, &a[i]) == BUDDY_OK ? (int)j : -1;
		done += k[i] >= 0;
		t = touched(z, nblk, &l);
		unsigned need = (l + BLK / U - 1) / (BLK / U);
		bound = need > bound ? need : bound;
		tmax = t > tmax ? t : tmax;
		if (t > bound + 1) {
			fprintf(stderr,
				"seed %" PRIu64 " op %u: %u blocks hold %u "
				"lower units, bound %u + 1\n",
				seed, op, t, l, bound);
			CHECK(t <= bound + 1);
			break;
		}
	}
	CHECK(done > ops / 2); /* the workload ran */
	CHECK(tmax > 1);       /* and spread over more than one block */
	CHECK_EQ(check_zone(z, false), 0);
	for (unsigned i = 0; i < nslots; i++)
		if (k[i] >= 0)
			CHECK_EQ(buddy_free(c, a[i], (unsigned)k[i]), BUDDY_OK);
	zone_done(z, c, n, meta);
	free(a);
	free(k);
}

int main(void)
{
	test_pick_fullest();
	for (unsigned j = BUDDY_CORE_SHIFT; j < 9; j++)
		test_pick_huge(j, j);
	test_pick_huge(BUDDY_CORE_SHIFT, 0); /* a unit for the lower level */
	/* 16 blocks of 2 MiB; about half of them held by small blocks. */
	for (uint64_t seed = 1; seed <= 4; seed++)
		test_gather(seed, 16, 1600, 40000);
	return check_exit("test_buddy_frag_v3");
}
