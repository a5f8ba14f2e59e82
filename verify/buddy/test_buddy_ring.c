/*
 * test_buddy_ring.c: version 3's per-CPU hand-over ring (lf_buddy_units,
 * BUDDY_CORE_SHIFT 5; docs/design.md 2.7, "The hand-over ring";
 * docs/v3-status.md item 44). A zone of 32 units (4 lines, 1,024 frames),
 * two CPU contexts. The deterministic parts run in one thread, the CPUs
 * used in turn; the stress runs two threads.
 *
 * Setting of the deterministic parts: CPU 0 takes every frame at order 0
 * (caches off) and drains (its units, full, are named by nothing), then
 * CPU 1, caches off, frees frames: the unit of each first free goes into
 * CPU 1's ring (pstk BL_PRING), not onto a shared partial stack.
 *
 * - Exact ENOMEM over the rings: with the only free block of order k
 *   (0-4) in a unit of CPU 1's ring, CPU 0 (caches on and off) asks for
 *   order k: it must get that block, not ENOMEM; with nothing free at
 *   all, ENOMEM.
 * - A full ring lists its oldest unit on the shared stacks (B4): 20 units
 *   freed into by CPU 1: the first 4 listed at their class, the last 16
 *   in the ring in order, the zone's invariants hold, and CPU 0 then gets
 *   exactly 20 frames, then ENOMEM.
 * - A ring unit taken as a reservation loses its mark: CPU 1 allocates,
 *   its ring's unit becomes its res, pstk 0, the ring empty (B3).
 * - A second free of a block in a ring unit, from either CPU, caches on or
 *   off: EDOUBLE, nothing changed (the ring, the word, the stats).
 * - A unit emptied by a free is kept below as the freeing CPU's res when
 *   its res is nearly full (docs/v3-status.md item 50): CPU 1's res holds
 *   9 free frames, its free of the last frame of a unit of its ring
 *   leaves that unit out of the ring, reserved with every frame free,
 *   named by res, and its old res released into its ring (B3, B4); then exact
 * ENOMEM at order 5 (the kept unit reclaimed by CPU 0's failing loop) and at
 * order 0 (the 9 frames), and CPU 1's drain keeps the unit and lists the ring.
 * With 17 free frames in res, no res, or the unit in CPU 0's ring, the emptied
 *   unit goes to the core.
 * - Stress: two threads allocate and free order-0 frames, holding at most
 *   511 and 512 of the 1,024 (a frame is free at every instant), caches on
 *   or off, draining now and then: no ENOMEM, no frame handed out twice,
 *   the invariants and conservation at the end, the zone whole after the
 *   drain.
 * - Stress with the free memory in the rings (docs/v3-status.md item 51):
 *   CPU 0 holds every frame but 8, which CPU 1 freed into units of its
 *   ring; four threads (four CPU contexts; on a machine of fewer cores
 *   preempted anywhere) take and give back frames
 *   beyond those, each holding at most 4, draining now and then, caches
 *   on or off. A thread claims a frame before its allocation and gives
 *   the claim up after its free returned; an allocation may fail only if
 *   the claims filled the 8 free frames at some instant of its call (one
 *   atomic word counts the claims and the times they became full): no
 *   ENOMEM while a frame was free at every instant, wherever it sat (a
 *   ring, a reservation, a partial stack, a cache), no frame handed out
 *   twice, the zone whole at the end.
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
_Static_assert(BL_RING == 16, "the ring's size this test assumes");

#define U ((uint64_t)1 << BUDDY_CORE_SHIFT) /* frames per unit */
#define NU 32u
#define ZONE_FRAMES (NU * U)
#define FS BUDDY_FRAME_SIZE

struct env {
	void *meta;
	struct buddy_zone *z;
	struct buddy_cpu *c[2];
	uint64_t held;
	bool own[ZONE_FRAMES]; /* frame i: held by the test (fill()) */
};

static struct env E;

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
	for (uint32_t i = 0; i < ZONE_FRAMES; i++)
		e->own[i] = false;
}

static struct bl_ctx *ctx(struct env *e, unsigned i)
{
	return &e->z->lower.ctx[i];
}

static uint16_t pstk(struct env *e, uint32_t u)
{
	/* Relaxed: one thread. */
	return lf_load_u16(&e->z->lower.pstk[u], LF_RELAXED);
}

static uint32_t ring_at(struct env *e, unsigned i, unsigned n)
{
	struct bl_ctx *l = ctx(e, i);
	/* Relaxed: one thread. */
	return lf_load_u32(&l->ring[(l->rh + n) % BL_RING], LF_RELAXED);
}

static uint64_t word(struct env *e, uint32_t u)
{
	/* Relaxed: one thread. */
	return lf_load_u64(&e->z->lower.word[BU_W(u)], LF_RELAXED);
}

static void env_check(struct env *e)
{
	struct buddy_stats st;
	buddy_zone_stats(e->z, &st);
	CHECK_EQ(st.free_frames + st.cached_frames + e->held, ZONE_FRAMES);
	CHECK_EQ(check_zone(e->z, false), 0);
}

/* Everything CPU 0 still holds freed, the zone drained and whole. */
static void env_done(struct env *e)
{
	for (uint32_t i = 0; i < ZONE_FRAMES; i++)
		if (e->own[i]) {
			CHECK_EQ(buddy_free(e->c[0], i * FS, 0), BUDDY_OK);
			e->own[i] = false;
			e->held--;
		}
	CHECK_EQ(e->held, 0);
	env_check(e);
	buddy_zone_drain_all(e->c[0]);
	CHECK_EQ(check_zone(e->z, true), 0);
	struct buddy_stats st;
	buddy_zone_stats(e->z, &st);
	CHECK_EQ(st.free_frames, ZONE_FRAMES);
	for (uint32_t u = 0; u < NU; u++)
		CHECK_EQ(word(e, u), BU_CORE);
	free(e->meta);
}

/*
 * CPU 0 takes every frame (caches off: none cached), then drains: every
 * unit full, unreserved, named by nothing.
 */
static void fill(struct env *e)
{
	buddy_cpu_cache_enable(e->c[0], false);
	for (uint32_t n = 0; n < ZONE_FRAMES; n++) {
		uint64_t a = 0;
		CHECK_FATAL(buddy_alloc(e->c[0], 0, &a) == BUDDY_OK);
		CHECK_FATAL(a / FS < ZONE_FRAMES && !e->own[a / FS]);
		e->own[a / FS] = true;
	}
	e->held = ZONE_FRAMES;
	uint64_t a;
	CHECK_EQ(buddy_alloc(e->c[0], 0, &a), BUDDY_ENOMEM);
	buddy_cpu_drain(e->c[0]);
	buddy_cpu_cache_enable(e->c[0], true);
	for (uint32_t u = 0; u < NU; u++) {
		CHECK_EQ(bu_free_bits(word(e, u)), 0);
		CHECK(!bu_reserved(word(e, u)));
		CHECK_EQ(pstk(e, u), 0);
	}
}

/* CPU i (caches off for it) frees frame x of CPU 0's. */
static void give(struct env *e, unsigned i, uint32_t x)
{
	buddy_cpu_cache_enable(e->c[i], false);
	CHECK_EQ(e->own[x], true);
	CHECK_EQ(buddy_free(e->c[i], x * FS, 0), BUDDY_OK);
	e->own[x] = false;
	e->held--;
	buddy_cpu_cache_enable(e->c[i], true);
}

static void test_enomem_ring(void)
{
	for (unsigned k = 0; k < BUDDY_CORE_SHIFT; k++)
		for (unsigned off = 0; off < 2; off++) {
			struct env *e = &E;
			env_init(e);
			fill(e);
			/* A block of order k in unit 3: CPU 1's ring. */
			uint32_t base = 3 * U + (U >> 1);
			for (uint32_t x = base; x < base + (1u << k); x++)
				give(e, 1, x);
			CHECK_EQ(ctx(e, 1)->rn, 1);
			CHECK_EQ(ring_at(e, 1, 0), 3);
			CHECK_EQ(pstk(e, 3), BL_PRING);
			env_check(e);
			/* CPU 0 asks for order k: only that block is free. */
			buddy_cpu_cache_enable(e->c[0], off == 0);
			uint64_t b = 0;
			CHECK_EQ(buddy_alloc(e->c[0], k, &b), BUDDY_OK);
			CHECK_EQ(b, (uint64_t)base * FS);
			e->held += 1u << k;
			/* Nothing free now: ENOMEM (exact both ways). */
			uint64_t c = 0;
			CHECK_EQ(buddy_alloc(e->c[0], 0, &c), BUDDY_ENOMEM);
			env_check(e);
			CHECK_EQ(buddy_free(e->c[0], b, k), BUDDY_OK);
			e->held -= 1u << k;
			buddy_cpu_cache_enable(e->c[0], true);
			env_done(e);
		}
}

static void test_overflow(void)
{
	struct env *e = &E;
	env_init(e);
	fill(e);
	for (uint32_t u = 0; u < 20; u++)
		give(e, 1, u * U + 5);
	CHECK_EQ(ctx(e, 1)->rn, BL_RING);
	for (uint32_t u = 0; u < 4; u++)
		CHECK_EQ(pstk(e, u), 1); /* listed at class 0 */
	for (uint32_t n = 0; n < BL_RING; n++) {
		CHECK_EQ(ring_at(e, 1, n), 4 + n);
		CHECK_EQ(pstk(e, 4 + n), BL_PRING);
	}
	env_check(e);
	/* Exactly the 20 frames, then ENOMEM. */
	buddy_cpu_cache_enable(e->c[0], false);
	uint64_t got[20];
	for (unsigned n = 0; n < 20; n++) {
		CHECK_EQ(buddy_alloc(e->c[0], 0, &got[n]), BUDDY_OK);
		CHECK_EQ(got[n] / FS % U, 5);
		e->held++;
	}
	uint64_t a = 0;
	CHECK_EQ(buddy_alloc(e->c[0], 0, &a), BUDDY_ENOMEM);
	env_check(e);
	for (unsigned n = 0; n < 20; n++) {
		CHECK_EQ(buddy_free(e->c[0], got[n], 0), BUDDY_OK);
		e->held--;
	}
	buddy_cpu_cache_enable(e->c[0], true);
	env_done(e);
}

static void test_take(void)
{
	struct env *e = &E;
	env_init(e);
	fill(e);
	give(e, 1, 5 * U + 3);
	give(e, 1, 5 * U + 9);
	give(e, 1, 7 * U + 9);
	CHECK_EQ(ctx(e, 1)->rn, 2);
	/* CPU 1's next reservation: the fullest ring unit of class 0. */
	buddy_cpu_cache_enable(e->c[1], false);
	uint64_t a = 0;
	CHECK_EQ(buddy_alloc(e->c[1], 0, &a), BUDDY_OK);
	e->held++;
	CHECK_EQ(a / FS / U, 7);
	/* Relaxed: one thread. */
	CHECK_EQ(lf_load_u32(&ctx(e, 1)->res, LF_RELAXED), 7);
	CHECK_EQ(pstk(e, 7), 0); /* the mark cleared (B3) */
	CHECK_EQ(ctx(e, 1)->rn, 1);
	CHECK_EQ(ring_at(e, 1, 0), 5);
	env_check(e);
	/* Its drain releases unit 7 (a free frame) and empties the ring. */
	CHECK_EQ(buddy_free(e->c[1], a, 0), BUDDY_OK);
	e->held--;
	buddy_cpu_drain(e->c[1]); /* the ring to the shared stacks */
	CHECK_EQ(ctx(e, 1)->rn, 0);
	CHECK_EQ(pstk(e, 5), 1);
	CHECK_EQ(pstk(e, 7), 1);
	env_check(e);
	buddy_cpu_cache_enable(e->c[1], true);
	env_done(e);
}

static void test_double_free(void)
{
	struct env *e = &E;
	env_init(e);
	fill(e);
	uint32_t x = 3 * U + 7;
	uint64_t ax = x * FS;
	give(e, 1, x);
	CHECK_EQ(pstk(e, 3), BL_PRING);
	for (unsigned i = 0; i < 2; i++)
		for (unsigned on = 0; on < 2; on++) {
			buddy_cpu_cache_enable(e->c[i], on != 0);
			struct buddy_stats s0, s1;
			buddy_zone_stats(e->z, &s0);
			uint64_t w = word(e, 3);
			CHECK_EQ(buddy_free(e->c[i], ax, 0), BUDDY_EDOUBLE);
			buddy_zone_stats(e->z, &s1);
			CHECK_EQ(s1.free_frames, s0.free_frames);
			CHECK_EQ(s1.cached_frames, s0.cached_frames);
			CHECK_EQ(word(e, 3), w);
			CHECK_EQ(ctx(e, 1)->rn, 1);
			CHECK_EQ(ctx(e, 0)->rn, 0);
			CHECK_EQ(pstk(e, 3), BL_PRING);
			buddy_cpu_cache_enable(e->c[i], true);
		}
	/* Another frame of the unit from CPU 0: still CPU 1's ring's. */
	give(e, 0, x + 1);
	CHECK_EQ(ctx(e, 0)->rn, 0);
	CHECK_EQ(ctx(e, 1)->rn, 1);
	env_check(e);
	env_done(e);
}

/*
 * CPU 1 (caches off) frees nfree frames of unit 5 and allocates one:
 * unit 5 out of its ring as its res, nfree - 1 frames free in it.
 */
static uint64_t keep_setup(struct env *e, uint32_t nfree)
{
	for (uint32_t x = 5 * U; x < 5 * U + nfree; x++)
		give(e, 1, x);
	buddy_cpu_cache_enable(e->c[1], false);
	uint64_t a = 0;
	CHECK_EQ(buddy_alloc(e->c[1], 0, &a), BUDDY_OK);
	e->held++;
	CHECK_EQ(a / FS / U, 5);
	/* Relaxed: one thread. */
	CHECK_EQ(lf_load_u32(&ctx(e, 1)->res, LF_RELAXED), 5);
	CHECK_EQ(bu_free_frames(word(e, 5)), nfree - 1);
	return a;
}

/* CPU 1 frees every frame of unit 7 (CPU 0's), the last one last. */
static void keep_empty7(struct env *e)
{
	for (uint32_t x = 7 * U; x < 8 * U; x++)
		give(e, 1, x);
}

static void test_keep_emptied(void)
{
	struct env *e = &E;
	env_init(e);
	fill(e);
	uint64_t a = keep_setup(e, 10);
	keep_empty7(e);
	/* Unit 7 kept: reserved, every frame free, CPU 1's res. */
	CHECK_EQ(word(e, 7), bu_make(0, U, true));
	/* Relaxed: one thread. */
	CHECK_EQ(lf_load_u32(&ctx(e, 1)->res, LF_RELAXED), 7);
	/* Out of the ring (B3), unit 5 released into it in its place. */
	CHECK_EQ(pstk(e, 7), 0);
	CHECK(!bu_reserved(word(e, 5)));
	CHECK_EQ(pstk(e, 5), BL_PRING);
	CHECK_EQ(ctx(e, 1)->rn, 1);
	CHECK_EQ(ring_at(e, 1, 0), 5);
	env_check(e);
	/* Order 5: exactly unit 7 (the core's failing loop reclaims it). */
	buddy_cpu_cache_enable(e->c[0], false);
	uint64_t b = 0, c = 0;
	CHECK_EQ(buddy_alloc(e->c[0], BUDDY_CORE_SHIFT, &b), BUDDY_OK);
	CHECK_EQ(b, 7 * U * FS);
	e->held += U;
	CHECK_EQ(buddy_alloc(e->c[0], BUDDY_CORE_SHIFT, &c), BUDDY_ENOMEM);
	/* Order 0: exactly the 9 frames of unit 5, then ENOMEM. */
	uint64_t got[9];
	for (unsigned n = 0; n < 9; n++) {
		CHECK_EQ(buddy_alloc(e->c[0], 0, &got[n]), BUDDY_OK);
		CHECK_EQ(got[n] / FS / U, 5);
		e->held++;
	}
	CHECK_EQ(buddy_alloc(e->c[0], 0, &c), BUDDY_ENOMEM);
	env_check(e);
	for (unsigned n = 0; n < 9; n++) {
		CHECK_EQ(buddy_free(e->c[0], got[n], 0), BUDDY_OK);
		e->held--;
	}
	CHECK_EQ(buddy_free(e->c[0], b, BUDDY_CORE_SHIFT), BUDDY_OK);
	e->held -= U;
	buddy_cpu_cache_enable(e->c[0], true);
	CHECK_EQ(buddy_free(e->c[1], a, 0), BUDDY_OK);
	e->held--;
	buddy_cpu_cache_enable(e->c[1], true);
	env_done(e);
}

/* The same, kept and then drained: the unit kept, the ring listed. */
static void test_keep_drain(void)
{
	struct env *e = &E;
	env_init(e);
	fill(e);
	uint64_t a = keep_setup(e, 10);
	keep_empty7(e);
	CHECK_EQ(buddy_free(e->c[1], a, 0), BUDDY_OK);
	e->held--;
	buddy_cpu_drain(e->c[1]);
	/* Relaxed: one thread. */
	CHECK_EQ(lf_load_u32(&ctx(e, 1)->res, LF_RELAXED), 7);
	CHECK_EQ(word(e, 7), bu_make(0, U, true));
	CHECK_EQ(ctx(e, 1)->rn, 0);
	CHECK_EQ(pstk(e, 5), bu_max_free_order(word(e, 5)) + 1); /* listed */
	env_check(e);
	buddy_cpu_cache_enable(e->c[1], true);
	env_done(e);
}

/*
 * Not kept (the unit to the core): no res (case 0), res with 17 free
 * frames (1), unit 7 in CPU 0's ring, not CPU 1's (2).
 */
static void test_keep_not(void)
{
	for (unsigned res = 0; res < 3; res++) {
		struct env *e = &E;
		env_init(e);
		fill(e);
		uint64_t a = res ? keep_setup(e, res == 1 ? 18 : 10) : 0;
		if (res == 2) {
			give(e, 0, 7 * U);
			CHECK_EQ(ring_at(e, 0, 0), 7);
			for (uint32_t x = 7 * U + 1; x < 8 * U; x++)
				give(e, 1, x);
		} else {
			keep_empty7(e);
		}
		CHECK_EQ(word(e, 7), BU_CORE);
		/* Relaxed: one thread. */
		CHECK_EQ(lf_load_u32(&ctx(e, 1)->res, LF_RELAXED),
			 res ? 5 : BL_NONE);
		env_check(e);
		if (res) {
			CHECK_EQ(buddy_free(e->c[1], a, 0), BUDDY_OK);
			e->held--;
		}
		buddy_cpu_cache_enable(e->c[1], true);
		env_done(e);
	}
}

/* The stress: two owners, a frame free at every instant. */
#define ST_OPS 100000u
static const unsigned st_max[2] = { ZONE_FRAMES / 2 - 1, ZONE_FRAMES / 2 };
static struct {
	_Atomic unsigned char owner[ZONE_FRAMES];
	atomic_uint bad;
	bool cache;
} ST;

static void *st_owner(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	struct buddy_cpu *c = E.c[t];
	static uint64_t held[2][ZONE_FRAMES];
	unsigned n = 0;
	uint64_t r = 0x9e3779b97f4a7c15ull * (t + 1);
	buddy_cpu_cache_enable(c, ST.cache);
	for (unsigned op = 0; op < ST_OPS; op++) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		if (r % 997 == 0)
			buddy_cpu_drain(c);
		/* Runs of allocations and of frees: units fill and reopen. */
		bool alloc = n < st_max[t] && (op >> 10) % 2 == 0;
		if (n == 0 || alloc) {
			if (n == st_max[t])
				continue;
			uint64_t a = 0;
			int rc = buddy_alloc(c, 0, &a);
			if (rc != BUDDY_OK) {
				fprintf(stderr,
					"thread %u: alloc %d, %u held\n", t, rc,
					n);
				atomic_fetch_add(&ST.bad, 1);
				break;
			}
			unsigned char z = 0;
			if (!atomic_compare_exchange_strong(&ST.owner[a / FS],
							    &z, t + 1))
				atomic_fetch_add(&ST.bad, 1);
			held[t][n++] = a;
		} else {
			unsigned i = (unsigned)(r % n);
			uint64_t a = held[t][i];
			held[t][i] = held[t][--n];
			atomic_store(&ST.owner[a / FS], 0);
			if (buddy_free(c, a, 0) != BUDDY_OK)
				atomic_fetch_add(&ST.bad, 1);
		}
	}
	while (n > 0) {
		uint64_t a = held[t][--n];
		atomic_store(&ST.owner[a / FS], 0);
		if (buddy_free(c, a, 0) != BUDDY_OK)
			atomic_fetch_add(&ST.bad, 1);
	}
	return NULL;
}

static void test_stress(void)
{
	for (unsigned on = 0; on < 2; on++) {
		struct env *e = &E;
		env_init(e);
		ST.cache = on != 0;
		atomic_store(&ST.bad, 0);
		pthread_t th[2];
		for (unsigned t = 0; t < 2; t++)
			CHECK_FATAL(pthread_create(&th[t], NULL, st_owner,
						   (void *)(uintptr_t)t) == 0);
		for (unsigned t = 0; t < 2; t++)
			pthread_join(th[t], NULL);
		CHECK_EQ(atomic_load(&ST.bad), 0);
		buddy_cpu_cache_enable(e->c[0], true);
		buddy_cpu_cache_enable(e->c[1], true);
		env_done(e);
	}
}

/* The stress with the free memory in the rings (item 51). */
#define SR_CPUS 4u
#define SR_FREE 8u     /* frames free in the zone */
#define SR_HOLD 4u     /* a thread's frames at most: 16 > 8 */
#define SR_OPS 200000u /* a thread's steps */
#define SR_MASK 0xffffffffull
static struct {
	/* Claims (low 32 bits) and the times they became SR_FREE (high). */
	_Atomic uint64_t cl;
	_Atomic unsigned char owner[ZONE_FRAMES];
	atomic_uint bad, enomem, falsenomem;
	bool cache;
	struct buddy_cpu *c[SR_CPUS];
} SR;

/* Claim a frame: the word after it (its claims, and the fulls). */
static uint64_t sr_claim(void)
{
	uint64_t o = atomic_load(&SR.cl), n;
	do {
		n = o + 1;
		if ((n & SR_MASK) == SR_FREE)
			n += 1ull << 32;
	} while (!atomic_compare_exchange_weak(&SR.cl, &o, n));
	return n;
}

static void *sr_thread(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	struct buddy_cpu *c = SR.c[t];
	uint64_t held[SR_HOLD];
	unsigned n = 0;
	uint64_t r = 0x9e3779b97f4a7c15ull * (t + 7);
	buddy_cpu_cache_enable(c, SR.cache);
	for (unsigned op = 0; op < SR_OPS; op++) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		if (r % 251 == 0)
			buddy_cpu_drain(c);
		if (n < SR_HOLD && (n == 0 || (r >> 8) % 4 != 0)) {
			uint64_t w0 = sr_claim(), a = 0;
			int rc = buddy_alloc(c, 0, &a);
			if (rc != BUDDY_OK) {
				uint64_t w1 = atomic_load(&SR.cl);
				atomic_fetch_sub(&SR.cl, 1);
				atomic_fetch_add(&SR.enomem, 1);
				if (rc != BUDDY_ENOMEM)
					atomic_fetch_add(&SR.bad, 1);
				/* Below full at the claim, never full since. */
				if ((w0 & SR_MASK) < SR_FREE &&
				    (w1 >> 32) == (w0 >> 32) &&
				    atomic_fetch_add(&SR.falsenomem, 1) < 3)
					fprintf(stderr,
						"thread %u: ENOMEM with %llu "
						"of "
						"%u frames claimed, never "
						"all\n",
						t,
						(unsigned long long)(w0 &
								     SR_MASK),
						SR_FREE);
				continue;
			}
			unsigned char z = 0;
			if (a / FS >= ZONE_FRAMES ||
			    !atomic_compare_exchange_strong(&SR.owner[a / FS],
							    &z, t + 1))
				atomic_fetch_add(&SR.bad, 1);
			held[n++] = a;
		} else {
			unsigned i = (unsigned)(r % n);
			uint64_t a = held[i];
			held[i] = held[--n];
			atomic_store(&SR.owner[a / FS], 0);
			if (buddy_free(c, a, 0) != BUDDY_OK)
				atomic_fetch_add(&SR.bad, 1);
			atomic_fetch_sub(&SR.cl, 1);
		}
	}
	while (n > 0) {
		uint64_t a = held[--n];
		atomic_store(&SR.owner[a / FS], 0);
		if (buddy_free(c, a, 0) != BUDDY_OK)
			atomic_fetch_add(&SR.bad, 1);
		atomic_fetch_sub(&SR.cl, 1);
	}
	return NULL;
}

static void test_stress_rings(void)
{
	for (unsigned on = 0; on < 2; on++) {
		struct env *e = &E;
		struct buddy_region rg = { 0, ZONE_FRAMES * FS };
		size_t sz = buddy_meta_size(&rg, 1, SR_CPUS);
		env_init(e); /* two contexts: replaced by four */
		free(e->meta);
		e->meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
		CHECK_FATAL(sz != 0 && e->meta != NULL);
		CHECK_FATAL(buddy_zone_init(&e->z, e->meta, sz, &rg, 1,
					    SR_CPUS) == BUDDY_OK);
		for (unsigned i = 0; i < SR_CPUS; i++)
			SR.c[i] = buddy_zone_cpu(e->z, i);
		e->c[0] = SR.c[0];
		e->c[1] = SR.c[1];
		fill(e);
		/* 8 frames of 8 units freed by CPU 1: its ring's. */
		for (uint32_t i = 0; i < SR_FREE; i++)
			give(e, 1, i * 3 * (uint32_t)U + 5);
		for (uint32_t i = 0; i < SR_FREE; i++)
			CHECK_EQ(pstk(e, i * 3), BL_PRING);
		env_check(e);
		SR.cache = on != 0;
		atomic_store(&SR.cl, 0);
		atomic_store(&SR.bad, 0);
		atomic_store(&SR.enomem, 0);
		atomic_store(&SR.falsenomem, 0);
		pthread_t th[SR_CPUS];
		for (unsigned t = 0; t < SR_CPUS; t++)
			CHECK_FATAL(pthread_create(&th[t], NULL, sr_thread,
						   (void *)(uintptr_t)t) == 0);
		for (unsigned t = 0; t < SR_CPUS; t++)
			pthread_join(th[t], NULL);
		printf("stress in the rings, caches %s: %u ENOMEM (allowed: "
		       "the claims full), %u false\n",
		       on ? "on" : "off", atomic_load(&SR.enomem),
		       atomic_load(&SR.falsenomem));
		CHECK_EQ(atomic_load(&SR.bad), 0);
		CHECK_EQ(atomic_load(&SR.falsenomem), 0);
		CHECK_EQ(atomic_load(&SR.cl) & SR_MASK, 0);
		for (unsigned i = 0; i < SR_CPUS; i++)
			buddy_cpu_cache_enable(SR.c[i], true);
		env_check(e);
		env_done(e);
	}
}

int main(int argc, char **argv)
{
	/* "rings": the stress in the rings alone (its mutant's check). */
	bool only = argc > 1 && argv[1][0] == 'r';
	if (!only) {
		test_enomem_ring();
		test_overflow();
		test_take();
		test_double_free();
		test_keep_emptied();
		test_keep_drain();
		test_keep_not();
		test_stress();
	}
	test_stress_rings();
	return check_exit("test_buddy_ring");
}
