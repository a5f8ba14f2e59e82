/*
 * test_buddy_edges.c: version 3's edge units (lf_buddy_units,
 * BUDDY_CORE_SHIFT 5; docs/design.md 2.7, "The word"): regions that start
 * or end inside a unit of 32 frames. The core tiles a region's whole
 * units only; each partial unit is LOWER for ever, its frames outside the
 * region allocated heads of order 0 in its word (never all free, never
 * back at the core), its frames inside free and listed (B4).
 *
 * One thread, against the locked buddy (the oracle of model_buddy) over
 * the same regions, for each of several layouts (a region with both ends
 * inside units, one inside a unit, one of a single frame, two in one unit
 * with a hole, two adjacent inside a unit, many):
 *   - after init: B1-B7 and coalesced (buddy_zone_check), the edge units
 *     exactly those of the regions' partial ends, each LOWER with the
 *     word bl_zone_edge() makes (outside H, inside F, R clear) and listed;
 *     every frame of the span reported as the oracle reports it (outside
 *     frames BUDDY_ERANGE);
 *   - bad input at every frame of the span and orders 0-6 (frees, frees
 *     at a byte offset, order 21, alloc_at): the oracle's error code,
 *     every unit word unchanged, every refusal counted;
 *   - a reserved edge unit whose region frames are all free (a frame
 *     allocated and freed): cached, B6 broken (the check must say so),
 *     no order-5 block from it; buddy_zone_drain_all() and
 *     buddy_cpu_drain() release it (listed again, free, B6 holds);
 *   - every frame allocated at random orders 0-6 by two contexts, each
 *     block where the oracle can take it, no frame twice, none outside a
 *     region, ENOMEM exactly when both are full; bad frees of held blocks
 *     around the edges (wrong order, tail, double) with the oracle's code
 *     and nothing changed; everything freed in a shuffled order: the zone
 *     as after init (edge units lower, unreserved, inside free; every
 *     other word 0; stats whole; frames as the oracle's).
 *
 * Stress (test_buddy_edges stress THREADS OPS): threads over a zone of
 * many regions at frame boundaries, orders 0-6 through buddy_alloc and
 * bl_alloc, own and cross frees (a mailbox), releases, drains, bad frees
 * of outside frames; an owner stamp per frame (B2, and no frame outside a
 * region); at the end the zone whole and coalesced with every edge unit
 * still lower and its region's frames free, every other unit at the core.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buddy_i.h"
#include "buddy_locked.h"
#include "buddy_test.h"
#include "check.h"

_Static_assert(BUDDY_CORE_SHIFT == 5, "built over units");

#define U ((uint64_t)BU_FRAMES) /* frames per unit */
#define F BUDDY_FRAME_SIZE
#define MAXR 12
#define MAXO 6 /* orders 0-6: both levels */

struct rspec {
	uint64_t pfn, n; /* frames */
};

struct layout {
	const char *name;
	unsigned n;
	struct rspec r[MAXR];
};

static const struct layout layouts[] = {
	{ "both ends inside units", 1, { { 1024 + 5, 200 } } },
	{ "inside one unit", 1, { { 37, 9 } } },
	{ "one frame", 1, { { 31, 1 } } },
	{ "two in one unit, a hole", 2, { { 66, 5 }, { 84, 12 } } },
	{ "adjacent inside a unit", 2, { { 128, 45 }, { 173, 55 } } },
	{ "whole, then partial", 2, { { 256, 70 }, { 608, 32 } } },
	{ "many",
	  6,
	  { { 3, 60 },
	    { 100, 3 },
	    { 103, 90 },
	    { 300, 1 },
	    { 333, 333 },
	    { 700, 31 } } },
};

/* A zone (2 CPUs) and the oracle over the same regions. */
struct pair {
	const struct layout *L;
	struct buddy_region rg[MAXR];
	struct buddy_zone *z;
	struct buddy_locked *ref;
	void *zm, *rm;
	uint64_t span, total; /* frames: [0, span) covers every region */
	uint8_t *owner;       /* per frame: held */
	uint8_t *head;        /* per frame: a held block's order + 1 */
	bool fresh;           /* as buddy_zone_init() left it */
};

static void pair_init(struct pair *p, const struct layout *L, unsigned ncpus)
{
	memset(p, 0, sizeof(*p));
	p->L = L;
	for (unsigned i = 0; i < L->n; i++) {
		p->rg[i] =
			(struct buddy_region){ L->r[i].pfn * F, L->r[i].n * F };
		p->total += L->r[i].n;
		p->span = L->r[i].pfn + L->r[i].n + 2 * U;
	}
	size_t zs = buddy_meta_size(p->rg, L->n, ncpus);
	size_t rs = buddy_locked_meta_size(p->rg, L->n);
	CHECK_FATAL(zs != 0 && rs != 0);
	p->zm = aligned_alloc(64, (zs + 63) & ~(size_t)63);
	p->rm = aligned_alloc(64, (rs + 63) & ~(size_t)63);
	p->owner = calloc(p->span, 1);
	p->head = calloc(p->span, 1);
	CHECK_FATAL(p->zm && p->rm && p->owner && p->head);
	CHECK_FATAL(buddy_zone_init(&p->z, p->zm, zs, p->rg, L->n, ncpus) ==
		    BUDDY_OK);
	/*
	 * Caches off (docs/v3-status.md item 37): this file's subject is the
	 * edge units' words, which frees of orders 0-4 reach; with the per-CPU
	 * block caches on such a free stays in a cache (its block allocated in
	 * the word). The caches' own windows: test_buddy_cache_units.
	 */
	for (unsigned i = 0; i < ncpus; i++)
		buddy_cpu_cache_enable(buddy_zone_cpu(p->z, i), false);
	CHECK_FATAL(buddy_locked_init(&p->ref, p->rm, rs, p->rg, L->n) ==
		    BUDDY_OK);
	p->fresh = true;
}

static void pair_fini(struct pair *p)
{
	free(p->zm);
	free(p->rm);
	free(p->owner);
	free(p->head);
}

static bool in_region(const struct layout *L, uint64_t pfn)
{
	for (unsigned i = 0; i < L->n; i++)
		if (pfn - L->r[i].pfn < L->r[i].n)
			return true;
	return false;
}

/* Edge units of the layout, by pfn arithmetic alone: partial ends. */
static unsigned expected_edges(const struct layout *L)
{
	unsigned n = 0;
	for (unsigned i = 0; i < L->n; i++) {
		uint64_t b = L->r[i].pfn, e = b + L->r[i].n;
		bool head = b % U != 0, tail = e % U != 0;
		n += head + tail - (head && tail && b / U == (e - 1) / U);
	}
	return n;
}

/*
 * Every unit: an edge unit is LOWER with its region's frames [lo, hi),
 * its word w_edge(lo, hi) (reserved as given) and, unreserved, listed;
 * with whole set, every other unit is at the core (word 0). The number
 * of edge units.
 */
static unsigned check_units(struct pair *p, bool whole)
{
	struct buddy_zone *z = p->z;
	unsigned edges = 0;
	for (uint32_t u = 0; u < z->lower.nunits; u++) {
		unsigned lo, hi;
		/* Relaxed: one thread. */
		uint64_t w = lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED);
		uint16_t s = lf_load_u16(&z->st[u], LF_RELAXED);
		uint16_t ps = lf_load_u16(&z->lower.pstk[u], LF_RELAXED);
		if (!buddy_unit_edge(z, u, &lo, &hi)) {
			if (whole)
				CHECK_EQ(w, BU_CORE);
			continue;
		}
		edges++;
		CHECK(lo < hi && hi - lo < U);
		CHECK(bst_is(s, BK_LOWER, BUDDY_CORE_SHIFT));
		/* The frames outside: never free, never a tail's head. */
		for (unsigned i = 0; i < U; i++)
			if (i < lo || i >= hi)
				CHECK_EQ(bu_code(w, i), BU_CODE_H);
		if (whole) {
			CHECK_EQ(w, bu_make(lo, hi, false));
			/*
			 * Listed; at init at its class (later an entry may
			 * sit in a lower one: frees only grow a unit's).
			 */
			CHECK(ps != 0);
			if (p->fresh)
				CHECK_EQ(ps,
					 (unsigned)bu_max_free_order(w) + 1);
		}
	}
	return edges;
}

/*
 * B1 of edge units, broken on purpose (one thread, restored after): an
 * outside frame made free, an outside frame made a tail of an inside
 * block, the core word not LOWER: buddy_zone_check() must say B1, at the
 * frame.
 */
static void check_sees_edges(struct pair *p)
{
	struct buddy_zone *z = p->z;
	unsigned seen = 0;
	for (uint32_t u = 0; u < z->lower.nunits; u++) {
		unsigned lo, hi;
		if (!buddy_unit_edge(z, u, &lo, &hi))
			continue;
		uint64_t fr, x = (uint64_t)u * U;
		unsigned i = lo > 0 ? lo - 1 : hi; /* an outside frame */
		/* Relaxed: one thread. */
		uint64_t w = lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED);
		uint16_t s = lf_load_u16(&z->st[u], LF_RELAXED);
		lf_store_u64(&z->lower.word[BU_W(u)], bu_put_free(w, i, 1),
			     LF_RELAXED);
		CHECK_EQ(buddy_zone_check(z, false, &fr), 1);
		/* At the frame (or the unit: an all-free word, invalid). */
		CHECK(fr == x + i || fr == x);
		if (lo > 0 && (lo & 1) && lo + 1 < hi) {
			/* Frames lo - 1 and lo one order-1 block: a tail. */
			lf_store_u64(&z->lower.word[BU_W(u)],
				     bu_put_block(w, lo - 1, 1), LF_RELAXED);
			CHECK_EQ(buddy_zone_check(z, false, &fr), 1);
		}
		lf_store_u64(&z->lower.word[BU_W(u)], w, LF_RELAXED);
		lf_store_u16(&z->st[u], bst_make(BK_TAIL, 0, 0), LF_RELAXED);
		CHECK_EQ(buddy_zone_check(z, false, &fr), 1);
		lf_store_u16(&z->st[u], s, LF_RELAXED);
		CHECK_EQ(check_zone(z, true), 0);
		seen++;
	}
	CHECK(seen > 0);
}

/* Every frame of the span reported as the oracle reports it. */
static void compare_frames(struct pair *p)
{
	for (uint64_t pfn = 0; pfn < p->span; pfn++) {
		unsigned k1 = 0, o1 = 0, k2 = 0, o2 = 0;
		int r1 = buddy_zone_frame(p->z, pfn * F, &k1, &o1);
		int r2 = buddy_locked_frame(p->ref, pfn * F, &k2, &o2);
		CHECK_EQ(r1, r2);
		CHECK_EQ(r1 == BUDDY_OK, in_region(p->L, pfn));
		if (r1 == BUDDY_OK && (k1 != k2 || o1 != o2)) {
			fprintf(stderr,
				"%s: frame %" PRIu64 ": %u/%u, not %u/%u\n",
				p->L->name, pfn, k1, o1, k2, o2);
			CHECK(0);
		}
	}
}

/* The unit words and pstk, to see that a refusal changed nothing. */
static uint64_t words_hash(struct buddy_zone *z)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (uint32_t u = 0; u < z->lower.nunits; u++) {
		/* Relaxed: one thread. */
		h = (h ^ lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED)) *
		    0x100000001b3ull;
		h = (h ^ lf_load_u16(&z->lower.pstk[u], LF_RELAXED)) *
		    0x100000001b3ull;
		h = (h ^ lf_load_u16(&z->st[u], LF_RELAXED)) * 0x100000001b3ull;
	}
	return h;
}

static uint64_t rejected(struct buddy_zone *z)
{
	struct buddy_stats st;
	buddy_zone_stats(z, &st);
	return st.rejected;
}

/*
 * Frees of blocks nobody holds (the zone free, or full) at every frame of
 * the span, orders 0-MAXO, a byte inside the frame, order 21: the
 * oracle's error code, every word unchanged, each refusal counted.
 */
static void bad_frees(struct pair *p, struct buddy_cpu *c)
{
	uint64_t h = words_hash(p->z), r0 = rejected(p->z), n = 0;
	for (uint64_t pfn = 0; pfn < p->span; pfn++)
		for (unsigned o = 0; o <= MAXO + 2; o++) {
			uint64_t a = pfn * F + (o == MAXO + 2 ? 8 : 0);
			unsigned k = o > MAXO ? (o == MAXO + 1 ? 21 : 0) : o;
			if (o <= MAXO && p->head[pfn] == k + 1)
				continue; /* a good free */
			int rc = buddy_free(c, a, k);
			CHECK_EQ(rc, buddy_locked_free(p->ref, a, k));
			CHECK(rc != BUDDY_OK);
			n++;
		}
	CHECK_EQ(words_hash(p->z), h);
	CHECK_EQ(rejected(p->z) - r0, n);
}

/*
 * alloc_at at every frame and order 0-MAXO on a free zone: the oracle's
 * code at every order, below a unit too (through the unit's word, or the
 * unit brought down from the core); a success freed again at once, a
 * refusal with every word unchanged.
 */
static void alloc_at_all(struct pair *p, struct buddy_cpu *c)
{
	for (uint64_t pfn = 0; pfn < p->span; pfn++)
		for (unsigned o = 0; o <= MAXO; o++) {
			uint64_t h = words_hash(p->z);
			int rc = buddy_alloc_at(c, pfn * F, o);
			CHECK_EQ(rc, buddy_locked_alloc_at(p->ref, pfn * F, o));
			if (rc != BUDDY_OK) {
				CHECK_EQ(words_hash(p->z), h);
				continue;
			}
			CHECK_EQ(buddy_free(c, pfn * F, o), BUDDY_OK);
			CHECK_EQ(buddy_locked_free(p->ref, pfn * F, o),
				 BUDDY_OK);
		}
}

/*
 * A frame allocated and freed by c: its reservation is the edge unit the
 * partial stacks gave it, reserved and with every region frame free: a
 * cache. B6 must be broken until a drain releases it (drain_all, or c's
 * own drain), and no order-5 block may come from it.
 */
static void reserved_edge(struct pair *p, struct buddy_cpu *c, bool own)
{
	struct buddy_zone *z = p->z;
	struct bl_ctx *l = buddy_lower_ctx(c);
	uint64_t a;
	unsigned lo, hi;
	CHECK_EQ(buddy_alloc(c, 0, &a), BUDDY_OK);
	CHECK_EQ(buddy_free(c, a, 0), BUDDY_OK);
	/* Relaxed: one thread. */
	uint32_t u = lf_load_u32(&l->res, LF_RELAXED);
	CHECK_FATAL(u != BL_NONE && buddy_unit_edge(z, u, &lo, &hi));
	CHECK_EQ(lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED),
		 bu_make(lo, hi, true));
	struct buddy_stats st;
	buddy_zone_stats(z, &st);
	CHECK_EQ(st.cached_frames, hi - lo);
	CHECK_EQ(st.free_frames + st.cached_frames, p->total);
	CHECK_EQ(check_zone(z, false), 0);
	uint64_t fr;
	CHECK_EQ(buddy_zone_check(z, true, &fr), 6); /* B6: the check sees it */
	CHECK_EQ(fr, (uint64_t)u * U);
	if (own)
		buddy_cpu_drain(c);
	else
		buddy_zone_drain_all(c);
	CHECK_EQ(check_zone(z, true), 0);
	CHECK_EQ(lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED),
		 bu_make(lo, hi, false));
	buddy_zone_stats(z, &st);
	CHECK_EQ(st.cached_frames, 0);
	CHECK_EQ(st.free_frames, p->total);
}

struct held {
	uint64_t a;
	unsigned k;
};

/* Every frame allocated by two contexts at orders 0-MAXO: how many. */
static unsigned fill(struct pair *p, struct buddy_cpu **cc, struct held *hb,
		     uint64_t *rng)
{
	unsigned n = 0;
	uint64_t frames = 0;
	for (;;) {
		unsigned k = (unsigned)(rnd(rng) % (MAXO + 1));
		uint64_t a, ra;
		int rc = buddy_alloc(cc[rnd(rng) & 1], k, &a);
		if (rc == BUDDY_ENOMEM) {
			/* Exact: the oracle holds the same blocks. */
			CHECK_EQ(buddy_locked_alloc(p->ref, k, &ra),
				 BUDDY_ENOMEM);
			if (k == 0)
				break;
			continue;
		}
		CHECK_FATAL(rc == BUDDY_OK && n < p->total);
		CHECK_EQ(a % (F << k), 0);
		CHECK_EQ(buddy_locked_alloc_at(p->ref, a, k), BUDDY_OK);
		for (uint64_t y = a / F; y < a / F + (1u << k); y++) {
			CHECK_FATAL(y < p->span && in_region(p->L, y));
			CHECK_FATAL(p->owner[y] == 0); /* B2 */
			p->owner[y] = 1;
		}
		p->head[a / F] = (uint8_t)(k + 1);
		hb[n++] = (struct held){ a, k };
		frames += 1u << k;
		if (n % 37 == 0)
			CHECK_EQ(check_zone(p->z, false), 0);
	}
	CHECK_EQ(frames, p->total);
	return n;
}

/* Bad frees of held blocks: wrong orders, tails; the oracle's code. */
static void bad_frees_held(struct pair *p, struct buddy_cpu *c,
			   const struct held *hb, unsigned n)
{
	uint64_t h = words_hash(p->z);
	for (unsigned i = 0; i < n; i++) {
		uint64_t a = hb[i].a;
		unsigned k = hb[i].k;
		for (unsigned o = 0; o <= MAXO + 1; o++) {
			if (o == k)
				continue;
			int rc = buddy_free(c, a, o);
			CHECK_EQ(rc, buddy_locked_free(p->ref, a, o));
			CHECK(rc != BUDDY_OK);
		}
		if (k > 0) {
			int rc = buddy_free(c, a + F, 0); /* a tail */
			CHECK_EQ(rc, buddy_locked_free(p->ref, a + F, 0));
			CHECK_EQ(rc, BUDDY_ETAIL);
		}
	}
	CHECK_EQ(words_hash(p->z), h);
}

static void test_layout(const struct layout *L)
{
	struct pair p;
	pair_init(&p, L, 2);
	struct buddy_cpu *cc[2] = { buddy_zone_cpu(p.z, 0),
				    buddy_zone_cpu(p.z, 1) };
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uintptr_t)L;
	unsigned ne = expected_edges(L);

	/* Init: the edge units, the stats, the frames (nothing to go on
	 * with if the zone is broken from the start). */
	CHECK_FATAL(check_zone(p.z, true) == 0);
	CHECK_EQ(check_units(&p, true), ne);
	struct buddy_stats st;
	buddy_zone_stats(p.z, &st);
	CHECK_EQ(st.total_frames, p.total);
	CHECK_EQ(st.free_frames, p.total);
	CHECK_EQ(st.cached_frames, 0);
	compare_frames(&p);
	p.fresh = false;
	check_sees_edges(&p);

	/* Bad input on the free zone, then alloc_at everywhere. */
	bad_frees(&p, cc[1]);
	alloc_at_all(&p, cc[0]);
	buddy_zone_drain_all(cc[0]);
	CHECK_EQ(check_zone(p.z, true), 0);
	CHECK_EQ(check_units(&p, true), ne);
	compare_frames(&p);

	/* A reserved edge unit, released by either drain. */
	reserved_edge(&p, cc[0], false);
	reserved_edge(&p, cc[1], true);
	CHECK_EQ(check_units(&p, true), ne);

	/* Full, bad frees, then every block freed, twice. */
	struct held *hb = calloc(p.total, sizeof(*hb));
	CHECK_FATAL(hb != NULL);
	for (unsigned round = 0; round < 2; round++) {
		unsigned n = fill(&p, cc, hb, &rng);
		buddy_zone_stats(p.z, &st);
		CHECK_EQ(st.free_frames + st.cached_frames, 0);
		CHECK_EQ(check_units(&p, false), ne);
		CHECK_EQ(check_zone(p.z, false), 0);
		compare_frames(&p);
		bad_frees_held(&p, cc[round], hb, n);
		bad_frees(&p, cc[1 - round]);
		for (unsigned i = n; i > 1; i--) {
			unsigned j = (unsigned)(rnd(&rng) % i);
			struct held t = hb[i - 1];
			hb[i - 1] = hb[j];
			hb[j] = t;
		}
		for (unsigned i = 0; i < n; i++) {
			for (uint64_t y = hb[i].a / F;
			     y < hb[i].a / F + (1u << hb[i].k); y++)
				p.owner[y] = 0;
			p.head[hb[i].a / F] = 0;
			CHECK_EQ(
				buddy_free(cc[rnd(&rng) & 1], hb[i].a, hb[i].k),
				BUDDY_OK);
			CHECK_EQ(buddy_locked_free(p.ref, hb[i].a, hb[i].k),
				 BUDDY_OK);
			if (i % 41 == 0)
				CHECK_EQ(check_zone(p.z, false), 0);
		}
		/* Conservation, before the drain: caches counted. */
		buddy_zone_stats(p.z, &st);
		CHECK_EQ(st.free_frames + st.cached_frames, p.total);
		buddy_zone_drain_all(cc[round]);
		CHECK_EQ(check_zone(p.z, true), 0);
		CHECK_EQ(check_units(&p, true), ne);
		buddy_zone_stats(p.z, &st);
		CHECK_EQ(st.free_frames, p.total);
		CHECK_EQ(st.cached_frames, 0);
		compare_frames(&p);
	}
	/* Orders a unit or more: only whole units serve them. */
	uint64_t a;
	bool whole = false;
	for (unsigned i = 0; i < L->n; i++) {
		uint64_t b = (L->r[i].pfn + U - 1) / U * U;
		whole |= b + U <= L->r[i].pfn + L->r[i].n;
	}
	int rc = buddy_alloc(cc[0], BUDDY_CORE_SHIFT, &a);
	CHECK_EQ(rc == BUDDY_OK, whole);
	if (rc == BUDDY_OK)
		CHECK_EQ(buddy_free(cc[0], a, BUDDY_CORE_SHIFT), BUDDY_OK);
	printf("test_buddy_edges: %-24s %u regions, %" PRIu64
	       " frames, %u edge units\n",
	       L->name, L->n, p.total, ne);
	free(hb);
	pair_fini(&p);
}

/* Regions must still be sorted, disjoint, frame-aligned and not empty. */
static void test_refused(void)
{
	struct buddy_region bad[][2] = {
		{ { 5 * F + 8, 3 * F }, { 0, 0 } }, /* not frame-aligned */
		{ { 5 * F, 3 * F + 1 }, { 0, 0 } }, /* size either */
		{ { 5 * F, 0 }, { 0, 0 } },         /* empty */
		{ { 5 * F, 3 * F }, { 7 * F, F } }, /* overlapping */
		{ { 9 * F, 3 * F }, { 2 * F, F } }, /* unsorted */
	};
	unsigned nb[] = { 1, 1, 1, 2, 2 };
	for (unsigned i = 0; i < sizeof(nb) / sizeof(nb[0]); i++)
		CHECK_EQ(buddy_meta_size(bad[i], nb[i], 1), 0);
	/* Adjacent inside a unit: fine (two edge units, the index layout). */
	struct buddy_region ok[2] = { { 5 * F, 3 * F }, { 8 * F, 7 * F } };
	CHECK(buddy_meta_size(ok, 2, 1) != 0);
}

/* ---- stress ---- */

#define ST_HELD 64
#define ST_MAIL 64

static const struct layout st_layout = { "stress",
					 12,
					 { { 3, 60 },
					   { 100, 3 },
					   { 103, 90 },
					   { 300, 1 },
					   { 333, 1333 },
					   { 1700, 31 },
					   { 1731, 17 },
					   { 1760, 2 },
					   { 1795, 700 },
					   { 2600, 5 },
					   { 2630, 64 },
					   { 2699, 1000 } } };

static struct {
	struct pair p;
	_Atomic uint64_t mail[ST_MAIL]; /* address | order + 1, or 0 */
	_Atomic uint8_t *owner;         /* per frame: thread + 1 */
	uint64_t ops;
	_Atomic uint64_t allocs, edge_allocs, core_allocs, cross, bad;
} ST;

static void st_stamp(uint64_t a, unsigned k, uint8_t t)
{
	for (uint64_t y = a / F; y < a / F + (1u << k); y++) {
		CHECK_FATAL(y < ST.p.span && in_region(ST.p.L, y));
		uint8_t old = atomic_exchange(&ST.owner[y], t);
		if ((t == 0) == (old == 0))
			CHECK_FATAL(!"B2: a frame handed out twice, or freed "
				     "unowned");
	}
}

static bool st_in_edge(uint64_t a)
{
	unsigned lo, hi;
	const struct buddy_rgn *r = buddy_rgn_of_pfn(ST.p.z, a / F);
	return buddy_unit_edge(ST.p.z, buddy_cx(buddy_addr_idx(r, a)), &lo,
			       &hi);
}

static void st_free(unsigned t, uint64_t a, unsigned k)
{
	struct buddy_cpu *c = buddy_zone_cpu(ST.p.z, t);
	st_stamp(a, k, 0);
	int rc;
	if (k < BUDDY_CORE_SHIFT && (a / F) % 2) {
		const struct buddy_rgn *r = buddy_rgn_of_pfn(ST.p.z, a / F);
		rc = bl_free(buddy_lower_ctx(c), buddy_addr_idx(r, a), k);
	} else {
		rc = buddy_free(c, a, k);
	}
	CHECK_FATAL(rc == BUDDY_OK);
}

static void *st_thread(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	struct buddy_cpu *c = buddy_zone_cpu(ST.p.z, t);
	struct bl_ctx *l = buddy_lower_ctx(c);
	struct held hb[ST_HELD];
	unsigned n = 0;
	uint64_t rng = 0x2545f4914f6cdd1dull * (t + 1);
	for (uint64_t op = 0; op < ST.ops; op++) {
		unsigned r = (unsigned)(rnd(&rng) % 100);
		if (r < 50 && n < ST_HELD) {
			unsigned k = (unsigned)(rnd(&rng) % (MAXO + 1));
			uint64_t a;
			uint32_t x;
			if (k < BUDDY_CORE_SHIFT && (rnd(&rng) & 1)) {
				if (bl_alloc(l, k, &x) != BUDDY_OK)
					continue;
				a = buddy_idx_addr(ST.p.z, x);
			} else if (buddy_alloc(c, k, &a) != BUDDY_OK) {
				continue;
			}
			st_stamp(a, k, (uint8_t)(t + 1));
			hb[n++] = (struct held){ a, k };
			atomic_fetch_add(&ST.allocs, 1);
			if (k >= BUDDY_CORE_SHIFT)
				atomic_fetch_add(&ST.core_allocs, 1);
			else if (st_in_edge(a))
				atomic_fetch_add(&ST.edge_allocs, 1);
		} else if (r < 85 && n > 0) {
			unsigned j = (unsigned)(rnd(&rng) % n);
			struct held b = hb[j];
			hb[j] = hb[--n];
			unsigned m = (unsigned)(rnd(&rng) % ST_MAIL);
			uint64_t zero = 0;
			if ((rnd(&rng) & 1) &&
			    atomic_compare_exchange_strong(&ST.mail[m], &zero,
							   b.a | (b.k + 1)))
				continue;
			st_free(t, b.a, b.k);
		} else if (r < 94) {
			unsigned m = (unsigned)(rnd(&rng) % ST_MAIL);
			uint64_t v = atomic_exchange(&ST.mail[m], 0);
			if (v != 0) {
				st_free(t, v & ~(uint64_t)63,
					(unsigned)(v & 63) - 1);
				atomic_fetch_add(&ST.cross, 1);
			}
		} else if (r < 97) {
			/* A frame outside every region: refused. */
			uint64_t y = rnd(&rng) % ST.p.span;
			if (!in_region(ST.p.L, y)) {
				CHECK_FATAL(
					buddy_free(c, y * F,
						   (unsigned)(rnd(&rng) %
							      (MAXO + 1))) ==
					BUDDY_ERANGE);
				atomic_fetch_add(&ST.bad, 1);
			}
		} else if (r < 98) {
			bl_release(l);
		} else if (r < 99) {
			buddy_cpu_drain(c);
		} else {
			buddy_zone_drain_all(c);
		}
	}
	while (n > 0) {
		n--;
		st_free(t, hb[n].a, hb[n].k);
	}
	bl_release(l);
	return NULL;
}

static int stress(unsigned nt, uint64_t ops)
{
	CHECK_FATAL(nt >= 1 && nt <= 8);
	pair_init(&ST.p, &st_layout, nt);
	ST.owner = calloc(ST.p.span, 1);
	CHECK_FATAL(ST.owner != NULL);
	ST.ops = ops;
	unsigned ne = expected_edges(&st_layout);
	CHECK_EQ(check_units(&ST.p, true), ne);
	ST.p.fresh = false;
	pthread_t th[8];
	for (unsigned i = 0; i < nt; i++)
		CHECK_FATAL(pthread_create(&th[i], NULL, st_thread,
					   (void *)(uintptr_t)i) == 0);
	for (unsigned i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	for (unsigned m = 0; m < ST_MAIL; m++) {
		uint64_t v = atomic_exchange(&ST.mail[m], 0);
		if (v != 0)
			st_free(0, v & ~(uint64_t)63, (unsigned)(v & 63) - 1);
	}
	CHECK_EQ(check_zone(ST.p.z, false), 0);
	struct buddy_stats st;
	buddy_zone_stats(ST.p.z, &st);
	CHECK_EQ(st.free_frames + st.cached_frames, ST.p.total);
	buddy_zone_drain_all(buddy_zone_cpu(ST.p.z, 0));
	CHECK_EQ(check_zone(ST.p.z, true), 0);
	/* Every edge unit still lower, its region's frames free, listed. */
	CHECK_EQ(check_units(&ST.p, true), ne);
	buddy_zone_stats(ST.p.z, &st);
	CHECK_EQ(st.free_frames, ST.p.total);
	CHECK_EQ(st.cached_frames, 0);
	CHECK_EQ(st.rejected, ST.bad);
	CHECK_EQ(st.rejected_by[-BUDDY_ERANGE], ST.bad);
	for (uint64_t y = 0; y < ST.p.span; y++)
		CHECK_EQ(atomic_load(&ST.owner[y]), 0);
	uint64_t given = 0;
	for (uint32_t i = 0; i < nt; i++)
		/* Relaxed: the threads have ended. */
		given += lf_load_u64(&ST.p.z->lower.ctx[i].ctr[BL_GIVEN],
				     LF_RELAXED);
	printf("test_buddy_edges stress: %u threads x %" PRIu64
	       " ops over %u edge units: %" PRIu64 " allocations (%" PRIu64
	       " in edge units, %" PRIu64 " at the core), %" PRIu64
	       " cross frees, %" PRIu64 " outside frees refused, %" PRIu64
	       " units up\n",
	       nt, ops, ne, atomic_load(&ST.allocs),
	       atomic_load(&ST.edge_allocs), atomic_load(&ST.core_allocs),
	       atomic_load(&ST.cross), atomic_load(&ST.bad), given);
	/* A torture that did nothing proves nothing. */
	CHECK(atomic_load(&ST.allocs) > ops / 10);
	CHECK(atomic_load(&ST.edge_allocs) > 0);
	CHECK(atomic_load(&ST.core_allocs) > 0);
	CHECK(atomic_load(&ST.cross) > 0);
	CHECK(atomic_load(&ST.bad) > 0);
	CHECK(given > 0);
	free(ST.owner);
	pair_fini(&ST.p);
	return check_exit("test_buddy_edges stress");
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "stress") == 0)
		return stress((unsigned)atoi(argv[2]),
			      strtoull(argv[3], NULL, 10));
	test_refused();
	for (unsigned i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		test_layout(&layouts[i]);
	return check_exit("test_buddy_edges");
}
