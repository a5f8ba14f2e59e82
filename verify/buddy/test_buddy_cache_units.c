/*
 * test_buddy_cache_units.c: version 3's per-CPU block caches (lf_buddy_units,
 * BUDDY_CORE_SHIFT 5; docs/design.md 2.7, "Per-CPU block caches";
 * docs/v3-status.md item 37). One thread, two CPU contexts used in turn,
 * over a zone of one line (8 units, 256 frames). Deterministic.
 *
 * - A free of orders 0-4 goes into the CPU's cache (the block stays
 *   allocated in its word, its cached bit set): a second free of it, from
 *   its CPU or the other, caches on or off, is refused (EDOUBLE) and
 *   changes nothing (counts, stats, the word), and so is a free of either
 *   half of it (version 2's code for a part of a free block); a third
 *   free after a drain too (free in its word).
 * - A refilled block (the slow path's refill: 7 more blocks of the order
 *   from the reservation by one CAS, their bits set) is refused a late
 *   second free of its previous life; popped and freed by its new owner,
 *   it is accepted.
 * - Every allocation that takes a frame from a word clears its stale bit:
 *   blocks drained and taken again (from the hint, the slow path,
 *   alloc_below, alloc_at) are freed by their new owners without a
 *   refusal.
 * - ENOMEM is exact over the caches: with every free frame in the other
 *   CPU's cache, an allocation of every order (0-4 and the whole zone)
 *   drains it and succeeds.
 * - alloc_at of a cached block (orders 0-4) and of a unit whose allocated
 *   blocks are all cached (order 5) succeeds (version 2's contract: a
 *   cached frame is free to the caller); of a block a context holds it is
 *   EBUSY.
 * - Conservation (free + cached + held = total), buddy_zone_check with
 *   blocks in caches, and the zone whole and coalesced once drained.
 * - Each order's slots are its own (64 of order 0, 16 of each order 1-4):
 *   orders 0-2 full at once, every block cached and popped back as freed,
 *   an overflow of order 0 draining its oldest 8 alone.
 * - Threads: owners allocating and freeing orders 0-4 through their caches
 *   while another thread drains every CPU's cache (buddy_zone_drain_all(),
 *   the remote drain of a failing allocation): version 2's owner/drainer
 *   exclusion keeps every block handed out once (an owner map) and every
 *   free of a held block accepted.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "buddy_i.h"
#include "buddy_test.h"
#include "check.h"

_Static_assert(BUDDY_CORE_SHIFT == 5, "built over units");

#define U ((uint64_t)1 << BUDDY_CORE_SHIFT) /* frames per unit */
#define ZONE_FRAMES (BL_LINE * U)
#define FS BUDDY_FRAME_SIZE

struct env {
	void *meta;
	struct buddy_zone *z;
	struct buddy_cpu *c[2];
	uint64_t held; /* frames the test holds */
};

static void env_init(struct env *e)
{
	struct buddy_region rg = { 0, ZONE_FRAMES * FS };
	size_t sz = buddy_meta_size(&rg, 1, 2);
	e->meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(sz != 0 && e->meta != NULL);
	CHECK_FATAL(buddy_zone_init(&e->z, e->meta, sz, &rg, 1, 2) == BUDDY_OK);
	e->c[0] = buddy_zone_cpu(e->z, 0);
	e->c[1] = buddy_zone_cpu(e->z, 1);
	e->held = 0;
}

/* Conservation, and the invariants with blocks in caches. */
static void env_check(struct env *e)
{
	struct buddy_stats st;
	buddy_zone_stats(e->z, &st);
	CHECK_EQ(st.free_frames + st.cached_frames + e->held, ZONE_FRAMES);
	CHECK_EQ(check_zone(e->z, false), 0);
}

static void env_done(struct env *e)
{
	CHECK_EQ(e->held, 0);
	buddy_zone_drain_all(e->c[0]);
	CHECK_EQ(check_zone(e->z, true), 0);
	struct buddy_stats st;
	buddy_zone_stats(e->z, &st);
	CHECK_EQ(st.free_frames, ZONE_FRAMES);
	CHECK_EQ(st.cached_frames, 0);
	for (uint32_t u = 0; u < BL_LINE; u++)
		/* Relaxed: one thread. */
		CHECK_EQ(lf_load_u64(&e->z->lower.word[BU_W(u)], LF_RELAXED),
			 BU_CORE);
	free(e->meta);
}

static void no_bits(struct env *e, uint64_t a, uint64_t n);

static uint64_t get(struct env *e, unsigned i, unsigned k)
{
	uint64_t a = 0;
	CHECK_FATAL(buddy_alloc(e->c[i], k, &a) == BUDDY_OK);
	e->held += 1u << k;
	no_bits(e, a, 1u << k);
	return a;
}

static void put(struct env *e, unsigned i, uint64_t a, unsigned k)
{
	CHECK_EQ(buddy_free(e->c[i], a, k), BUDDY_OK);
	e->held -= 1u << k;
}

static uint32_t cached(struct env *e, unsigned i, unsigned k)
{
	/* Relaxed: one thread. */
	return lf_load_u32(&e->c[i]->count[k], LF_RELAXED);
}

/* A refused free changed nothing: the stats and the word are the same. */
static void refused(struct env *e, unsigned i, uint64_t a, unsigned k)
{
	struct buddy_stats s0, s1;
	uint32_t u = (uint32_t)(a / FS / U);
	buddy_zone_stats(e->z, &s0);
	/* Relaxed: one thread. */
	uint64_t w = lf_load_u64(&e->z->lower.word[BU_W(u)], LF_RELAXED);
	uint32_t n0 = cached(e, 0, k), n1 = cached(e, 1, k);
	CHECK_EQ(buddy_free(e->c[i], a, k), BUDDY_EDOUBLE);
	buddy_zone_stats(e->z, &s1);
	CHECK_EQ(s1.free_frames, s0.free_frames);
	CHECK_EQ(s1.cached_frames, s0.cached_frames);
	CHECK_EQ(lf_load_u64(&e->z->lower.word[BU_W(u)], LF_RELAXED), w);
	CHECK_EQ(cached(e, 0, k), n0);
	CHECK_EQ(cached(e, 1, k), n1);
}

/* Second frees of a cached block: every CPU, caches on and off. */
static void test_double_free(void)
{
	for (unsigned k = 0; k < BUDDY_CORE_SHIFT; k++) {
		struct env e;
		env_init(&e);
		uint64_t a = get(&e, 0, k), b = get(&e, 0, k);
		uint32_t n0 = cached(&e, 0, k);
		put(&e, 0, a, k);
		CHECK_EQ(cached(&e, 0, k), n0 + 1);
		refused(&e, 0, a, k);
		refused(&e, 1, a, k);
		if (k > 0) {
			/* Either half of a cached block: free to the caller. */
			refused(&e, 1, a, k - 1);
			refused(&e, 0, a + (FS << (k - 1)), k - 1);
		}
		buddy_cpu_cache_enable(e.c[1], false);
		refused(&e, 1, a, k); /* the free into the word */
		buddy_cpu_cache_enable(e.c[1], true);
		env_check(&e);
		buddy_cpu_drain(e.c[0]); /* a is free in its word now */
		refused(&e, 0, a, k);
		refused(&e, 1, a, k);
		/* Popped (or taken from the word) again: its owner frees it. */
		uint64_t c = get(&e, 1, k);
		put(&e, 1, c, k);
		put(&e, 0, b, k);
		env_check(&e);
		env_done(&e);
	}
}

/* The refill's blocks carry their bits; the stale bits of a drain clear. */
static void test_refill(void)
{
	for (unsigned k = 0; k < BUDDY_CORE_SHIFT; k++) {
		struct env e;
		env_init(&e);
		/* CPU 1 takes every block of a unit (one life), frees them. */
		uint64_t xs[U];
		unsigned n = (unsigned)(U >> k);
		for (unsigned i = 0; i < n; i++)
			xs[i] = get(&e, 1, k);
		for (unsigned i = 0; i < n; i++)
			put(&e, 1, xs[i], k);
		env_check(&e);
		buddy_cpu_drain(e.c[1]); /* stale bits in its unit(s) */
		/*
		 * CPU 0's first allocation takes the slow path and refills:
		 * the rest of the order's cache comes from its reservation.
		 */
		uint64_t a = get(&e, 0, k);
		uint32_t r = cached(&e, 0, k);
		CHECK(r > 0 || k == BUDDY_CORE_SHIFT - 1);
		CHECK(r <= (k == 0 ? BUDDY_CC_REFILL0 : BUDDY_CC_REFILL));
		env_check(&e);
		/* Late second frees of the refilled blocks' previous lives. */
		for (unsigned j = 0; j < r; j++) {
			uint32_t x = buddy_slots(e.c[0], k)[j];
			refused(&e, 1, (uint64_t)x * FS, k);
			refused(&e, 0, (uint64_t)x * FS, k);
		}
		/* Popped by CPU 0, freed by it and by CPU 1 once each. */
		uint64_t ys[BUDDY_CC_REFILL0];
		for (unsigned j = 0; j < r; j++)
			ys[j] = get(&e, 0, k);
		CHECK_EQ(cached(&e, 0, k), 0);
		for (unsigned j = 0; j < r; j++)
			put(&e, j % 2, ys[j], k);
		put(&e, 1, a, k);
		env_check(&e);
		env_done(&e);
	}
}

/* No frame of a block just handed out carries a cached bit. */
static void no_bits(struct env *e, uint64_t a, uint64_t n)
{
	for (uint64_t f = a / FS; f < a / FS + n; f++)
		/* Relaxed: one thread. */
		CHECK_EQ((lf_load_u64(&e->z->lower.mask[BU_W(f / U)],
				      LF_RELAXED) >>
			  (f % U)) &
				 1,
			 0);
}

/*
 * Blocks drained and taken again through every allocation path that
 * takes from a word: every frame of the zone first allocated at order 0
 * and freed into the caches, then drained (every frame's bit stale); each
 * path's block has no bit set, and its owner frees it once, a second
 * free refused.
 */
static void test_stale_paths(void)
{
	struct env e;
	env_init(&e);
	for (unsigned round = 0; round < 4; round++) {
		static uint64_t xs[ZONE_FRAMES];
		unsigned n = 0;
		uint64_t a = 0;
		while (buddy_alloc(e.c[round % 2], 0, &a) == BUDDY_OK)
			xs[n++] = a;
		CHECK_EQ(n, ZONE_FRAMES);
		e.held += n;
		for (unsigned i = 0; i < n; i++)
			put(&e, (round + i) % 2, xs[i], 0);
		buddy_zone_drain_all(e.c[0]);
		env_check(&e);
		/* alloc_below, alloc_at, the hint and slow path, a run. */
		CHECK_EQ(buddy_alloc_below(e.c[0], 0, 64 * FS, &a), BUDDY_OK);
		e.held++;
		no_bits(&e, a, 1);
		CHECK_EQ(buddy_alloc_at(e.c[1], 65 * FS, 0), BUDDY_OK);
		e.held++;
		no_bits(&e, 65 * FS, 1);
		uint64_t b = get(&e, 0, 0), c = get(&e, 1, 1);
		no_bits(&e, b, 1);
		no_bits(&e, c, 2);
		uint64_t r = 0;
		CHECK_EQ(buddy_alloc_run(e.c[0], 5, &r), BUDDY_OK);
		no_bits(&e, r, 5);
		put(&e, 1, a, 0);
		refused(&e, 0, a, 0);
		put(&e, 0, 65 * FS, 0);
		refused(&e, 1, 65 * FS, 0);
		put(&e, 1, b, 0);
		put(&e, 0, c, 1);
		if (round % 2 == 0) {
			CHECK_EQ(buddy_free_run(e.c[1], r, 5), BUDDY_OK);
		} else {
			/* A run's pieces are blocks: freed one by one. */
			e.held += 5;
			put(&e, 1, r, 2);
			put(&e, 0, r + 4 * FS, 0);
		}
		env_check(&e);
	}
	env_done(&e);
}

/* ENOMEM is exact over the other CPU's cache, every order. */
static void test_enomem_remote(void)
{
	for (unsigned k = 0; k <= BUDDY_CORE_SHIFT + BL_LINE_ORDER; k++) {
		struct env e;
		env_init(&e);
		/* CPU 1 takes every frame, frees a block of order k' < 5. */
		uint64_t a;
		unsigned n = 0;
		static uint64_t xs[ZONE_FRAMES];
		while (buddy_alloc(e.c[1], 0, &a) == BUDDY_OK)
			xs[n++] = a;
		e.held = n;
		CHECK_EQ(n, ZONE_FRAMES);
		/*
		 * Order k below a unit: free an aligned block's frames (they
		 * sit in CPU 1's cache, order 0); order >= 5: free every
		 * frame (all in its cache, or drained by its overflows).
		 */
		unsigned m = k < BUDDY_CORE_SHIFT ? 1u << k : ZONE_FRAMES;
		uint64_t base = k < BUDDY_CORE_SHIFT ? 3 * U * FS : 0;
		for (unsigned i = 0; i < n; i++)
			if (xs[i] >= base && xs[i] < base + (uint64_t)m * FS)
				put(&e, 1, xs[i], 0);
		struct buddy_stats st;
		buddy_zone_stats(e.z, &st);
		CHECK(st.cached_frames > 0);
		/* CPU 0 asks for order k: only CPU 1's cache has it. */
		uint64_t b = 0;
		int rc = k > BUDDY_MAX_ORDER ? buddy_alloc(e.c[0], k, &b)
					     : buddy_alloc(e.c[0], k, &b);
		CHECK_EQ(rc, BUDDY_OK);
		if (rc == BUDDY_OK) {
			e.held += (uint64_t)1 << k;
			put(&e, 0, b, k);
		}
		for (unsigned i = 0; i < n; i++)
			if (!(xs[i] >= base && xs[i] < base + (uint64_t)m * FS))
				put(&e, 1, xs[i], 0);
		env_check(&e);
		env_done(&e);
	}
}

/* alloc_at over cached blocks: free to the caller; held ones EBUSY. */
static void test_at_cached(void)
{
	for (unsigned k = 0; k < BUDDY_CORE_SHIFT; k++) {
		struct env e;
		env_init(&e);
		uint64_t a = get(&e, 1, k), b = get(&e, 1, k);
		put(&e, 1, a, k); /* cached in CPU 1 */
		CHECK_EQ(buddy_alloc_at(e.c[0], a, k), BUDDY_OK);
		e.held += 1u << k;
		CHECK_EQ(cached(&e, 1, k), 0); /* drained */
		CHECK_EQ(buddy_alloc_at(e.c[0], b, k), BUDDY_EBUSY);
		/* A larger range over the cached and the held block. */
		if (k < BUDDY_MAX_ORDER && (a ^ b) == (FS << k)) {
			put(&e, 0, a, k);
			CHECK_EQ(buddy_alloc_at(e.c[0], a < b ? a : b, k + 1),
				 BUDDY_EBUSY);
			a = get(&e, 0, k);
		}
		put(&e, 0, a, k);
		put(&e, 1, b, k);
		env_check(&e);
		env_done(&e);
	}
	/* Order 5: a unit whose allocated blocks are all cached. */
	struct env e;
	env_init(&e);
	uint64_t xs[U];
	for (unsigned i = 0; i < U; i++)
		xs[i] = get(&e, 1, 0);
	uint64_t u0 = xs[0] & ~(U * FS - 1);
	for (unsigned i = 0; i < U; i++)
		put(&e, 1, xs[i], 0);
	CHECK_EQ(buddy_alloc_at(e.c[0], u0, BUDDY_CORE_SHIFT), BUDDY_OK);
	e.held += U;
	put(&e, 0, u0, BUDDY_CORE_SHIFT);
	/* One of them held: EBUSY. */
	for (unsigned i = 0; i < U; i++)
		xs[i] = get(&e, 1, 0);
	u0 = xs[0] & ~(U * FS - 1);
	for (unsigned i = 1; i < U; i++)
		put(&e, 1, xs[i], 0);
	CHECK_EQ(buddy_alloc_at(e.c[0], u0, BUDDY_CORE_SHIFT), BUDDY_EBUSY);
	put(&e, 1, xs[0], 0);
	env_check(&e);
	env_done(&e);
}

/*
 * Threads: T owners on CPUs 0..T-1 allocate and free orders 0-4 (an owner
 * map: no frame handed out twice, every free of a held block accepted);
 * CPU T's thread drains every cache in a loop (remote drains racing the
 * owners' pushes, pops and overflow drains).
 */
#define ST_OWNERS 2
#define ST_HELD 24
static struct {
	struct buddy_zone *z;
	_Atomic unsigned char owner[ZONE_FRAMES];
	atomic_bool stop;
	atomic_ulong bad;
} ST;

static void st_claim(uint64_t a, unsigned k, unsigned char t)
{
	for (uint64_t f = a / FS; f < a / FS + (1u << k); f++) {
		unsigned char o = 0;
		if (!atomic_compare_exchange_strong(&ST.owner[f], &o, t))
			atomic_fetch_add(&ST.bad, 1); /* handed out twice */
	}
}

static void st_unclaim(uint64_t a, unsigned k)
{
	for (uint64_t f = a / FS; f < a / FS + (1u << k); f++)
		atomic_store(&ST.owner[f], 0);
}

static void *st_owner(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	struct buddy_cpu *c = buddy_zone_cpu(ST.z, t);
	uint64_t rng = 0x9e3779b97f4a7c15ull * (t + 1), as[ST_HELD];
	unsigned ks[ST_HELD], n = 0;
	for (unsigned i = 0; i < 1000000; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		unsigned r = (unsigned)(rng >> 33);
		if (n < ST_HELD && (r % 2 == 0 || n == 0)) {
			unsigned k = (r / 2) % 3 == 0 ? (r / 8) % 5 : 0;
			uint64_t a;
			if (buddy_alloc(c, k, &a) != BUDDY_OK)
				continue;
			st_claim(a, k, (unsigned char)(t + 1));
			as[n] = a;
			ks[n++] = k;
		} else {
			unsigned j = (r / 2) % n;
			uint64_t a = as[j];
			unsigned k = ks[j];
			as[j] = as[--n];
			ks[j] = ks[n];
			st_unclaim(a, k);
			if (buddy_free(c, a, k) != BUDDY_OK)
				atomic_fetch_add(&ST.bad, 1);
		}
	}
	while (n > 0) {
		n--;
		st_unclaim(as[n], ks[n]);
		if (buddy_free(c, as[n], ks[n]) != BUDDY_OK)
			atomic_fetch_add(&ST.bad, 1);
	}
	return NULL;
}

static void *st_drainer(void *arg)
{
	struct buddy_cpu *c = arg;
	while (!atomic_load(&ST.stop))
		buddy_zone_drain_all(c);
	return NULL;
}

static void test_threads(void)
{
	struct env e;
	struct buddy_region rg = { 0, ZONE_FRAMES * FS };
	size_t sz = buddy_meta_size(&rg, 1, ST_OWNERS + 1);
	e.meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(sz != 0 && e.meta != NULL);
	CHECK_FATAL(buddy_zone_init(&e.z, e.meta, sz, &rg, 1, ST_OWNERS + 1) ==
		    BUDDY_OK);
	e.c[0] = buddy_zone_cpu(e.z, 0);
	e.held = 0;
	ST.z = e.z;
	atomic_store(&ST.stop, false);
	atomic_store(&ST.bad, 0);
	for (unsigned f = 0; f < ZONE_FRAMES; f++)
		atomic_store(&ST.owner[f], 0);
	pthread_t th[ST_OWNERS + 1];
	for (unsigned t = 0; t < ST_OWNERS; t++)
		CHECK_FATAL(pthread_create(&th[t], NULL, st_owner,
					   (void *)(uintptr_t)t) == 0);
	CHECK_FATAL(pthread_create(&th[ST_OWNERS], NULL, st_drainer,
				   buddy_zone_cpu(e.z, ST_OWNERS)) == 0);
	for (unsigned t = 0; t < ST_OWNERS; t++)
		pthread_join(th[t], NULL);
	atomic_store(&ST.stop, true);
	pthread_join(th[ST_OWNERS], NULL);
	CHECK_EQ(atomic_load(&ST.bad), 0);
	env_check(&e);
	env_done(&e);
}

/*
 * The slots of each order are its own (v3-status item 53: 64 of order 0,
 * 16 of each order 1-4, one array): order 0 full to its 64 and orders 1
 * and 2 to their 16 at once, every cached block checked (buddy_zone_check:
 * an allocated head of its order with its bit set, once), the 65th order-0
 * free draining the oldest 8 alone, and every block popped again the one
 * freed, newest first.
 */
static void test_order_slots(void)
{
	struct env e;
	env_init(&e);
	enum { N0 = BUDDY_CC_SLOTS0 + 1, N1 = BUDDY_CC_SLOTS };
	uint64_t b0[N0], b1[N1], b2[N1];
	for (unsigned i = 0; i < N0; i++)
		b0[i] = get(&e, 0, 0);
	for (unsigned i = 0; i < N1; i++) {
		b1[i] = get(&e, 0, 1);
		b2[i] = get(&e, 0, 2);
	}
	buddy_cpu_drain(e.c[0]); /* the refills' blocks out of the caches */
	for (unsigned k = 0; k < BUDDY_CC_ORDERS; k++)
		CHECK_EQ(cached(&e, 0, k), 0);
	for (unsigned i = 0; i < N1; i++)
		put(&e, 0, b1[i], 1);
	for (unsigned i = 0; i + 1 < N0; i++)
		put(&e, 0, b0[i], 0);
	for (unsigned i = 0; i < N1; i++)
		put(&e, 0, b2[i], 2);
	CHECK_EQ(cached(&e, 0, 0), BUDDY_CC_SLOTS0);
	CHECK_EQ(cached(&e, 0, 1), BUDDY_CC_SLOTS);
	CHECK_EQ(cached(&e, 0, 2), BUDDY_CC_SLOTS);
	env_check(&e);
	for (unsigned i = 0; i < BUDDY_CC_SLOTS0; i++)
		CHECK_EQ(buddy_slots(e.c[0], 0)[i], (uint32_t)(b0[i] / FS));
	for (unsigned i = 0; i < BUDDY_CC_SLOTS; i++) {
		CHECK_EQ(buddy_slots(e.c[0], 1)[i], (uint32_t)(b1[i] / FS));
		CHECK_EQ(buddy_slots(e.c[0], 2)[i], (uint32_t)(b2[i] / FS));
	}
	/* The 65th: the oldest BUDDY_CC_BATCH drained, the others kept. */
	put(&e, 0, b0[N0 - 1], 0);
	CHECK_EQ(cached(&e, 0, 0), BUDDY_CC_SLOTS0 - BUDDY_CC_BATCH + 1);
	CHECK_EQ(cached(&e, 0, 1), BUDDY_CC_SLOTS);
	env_check(&e);
	for (unsigned i = N0; i-- > BUDDY_CC_BATCH;)
		CHECK_EQ(get(&e, 0, 0), b0[i]);
	for (unsigned i = N1; i-- > 0;) {
		CHECK_EQ(get(&e, 0, 1), b1[i]);
		CHECK_EQ(get(&e, 0, 2), b2[i]);
	}
	env_check(&e);
	for (unsigned i = BUDDY_CC_BATCH; i < N0; i++)
		put(&e, 1, b0[i], 0);
	for (unsigned i = 0; i < N1; i++) {
		put(&e, 1, b1[i], 1);
		put(&e, 1, b2[i], 2);
	}
	env_check(&e);
	env_done(&e);
}

int main(void)
{
	test_double_free();
	test_refill();
	test_stale_paths();
	test_enomem_remote();
	test_at_cached();
	test_order_slots();
	test_threads();
	return check_exit("test_buddy_cache_units");
}
