/*
 * test_buddy_place_v3.c: version 3's constrained calls below a unit
 * (lf_buddy_units, docs/design.md 2.7, "Constraints"; docs/v3-status.md
 * item 12): buddy_alloc_below and buddy_alloc_at of orders 0-4, runs of
 * any length and buddy_free_run.
 *
 * One thread (test): two regions with a hole, against the locked buddy
 * as oracle. Between random steps that move units between reservations,
 * the partial stacks and the core (allocations of orders 0-6 and runs by
 * three contexts, frees by any, releases), every limit at every frame
 * boundary around and inside the regions, and one byte either side of
 * it, is asked of alloc_below at every order 0-4 (order 0, limits just
 * below, at and past the end of each free block, limits inside a unit),
 * and every frame of alloc_at at every order 0-4: the result and error
 * code must be the oracle's (an allocation is mirrored by the oracle's
 * alloc_at of the same block, then both are freed). Bad runs, crossing
 * runs below a unit (two units' words) included, must get the oracle's
 * error code and change nothing (every frame as buddy_zone_frame reports
 * it, before and after). The zone's invariants after every step.
 *
 * Threads (stress): alloc_below with random limits, alloc_at at random
 * frames, runs of any length and plain allocations of orders 0-6 race
 * each other, frees and free_runs (own and cross, through a mailbox) and
 * releases; an owner stamp per frame (nothing handed out twice), every
 * block below its limit; at the end every frame free, the zone whole and
 * fully coalesced. Fails if a class of call never succeeded.
 *
 * Usage: test_buddy_place_v3 [--seeds N] [--ops N] | stress THREADS OPS
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

#define U ((uint64_t)1 << BUDDY_CORE_SHIFT) /* frames per unit */
#define FS BUDDY_FRAME_SIZE
#define NCPU 3
#define MAXB 1024

/* ---- one thread, against the oracle ---- */

struct blk {
	uint64_t a;
	unsigned k;
};

static struct {
	struct buddy_region rg[2];
	struct buddy_zone *z;
	struct buddy_locked *ref;
	void *zm, *rm;
	struct blk b[MAXB];
	unsigned n;
	uint64_t rng, lo, hi; /* pfns looked at: [lo, hi) */
	uint64_t below_ok, below_no, at_ok, at_busy, run_bad, cross;
} T;

static struct buddy_cpu *t_cpu(void)
{
	return buddy_zone_cpu(T.z, (unsigned)(rnd(&T.rng) % NCPU));
}

static void t_init(uint64_t seed)
{
	memset(&T, 0, sizeof(T));
	T.rng = seed * 0x9e3779b97f4a7c15ull + 1;
	uint64_t f = FS * U;
	/* 8 units, a hole of 3, 6 units at an odd unit. */
	T.rg[0] = (struct buddy_region){ 32 * f, 8 * f };
	T.rg[1] = (struct buddy_region){ 43 * f, 6 * f };
	T.lo = 32 * U - 2;
	T.hi = 49 * U + 2;
	size_t zs = buddy_meta_size(T.rg, 2, NCPU);
	size_t rs = buddy_locked_meta_size(T.rg, 2);
	CHECK_FATAL(zs && rs);
	T.zm = aligned_alloc(64, (zs + 63) & ~(size_t)63);
	T.rm = aligned_alloc(64, (rs + 63) & ~(size_t)63);
	CHECK_FATAL(T.zm && T.rm);
	CHECK_FATAL(buddy_zone_init(&T.z, T.zm, zs, T.rg, 2, NCPU) == BUDDY_OK);
	CHECK_FATAL(buddy_locked_init(&T.ref, T.rm, rs, T.rg, 2) == BUDDY_OK);
}

static void t_add(uint64_t a, unsigned k)
{
	CHECK_FATAL(T.n < MAXB);
	T.b[T.n++] = (struct blk){ a, k };
}

/* Remove the live block (a, k): false if there is none. */
static bool t_del(uint64_t a, unsigned k)
{
	for (unsigned i = 0; i < T.n; i++)
		if (T.b[i].a == a && T.b[i].k == k) {
			T.b[i] = T.b[--T.n];
			return true;
		}
	return false;
}

/* A run's pieces, as buddy.h lays them out, mirrored and recorded. */
static void t_add_run(uint64_t a, uint64_t n)
{
	uint64_t off = 0;
	while (off < n) {
		unsigned o = 63u - (unsigned)__builtin_clzll(n - off);
		CHECK_FATAL(buddy_locked_alloc_at(T.ref, a + off * FS, o) ==
			    BUDDY_OK);
		t_add(a + off * FS, o);
		off += (uint64_t)1 << o;
	}
}

/* One random step that moves memory between the places. */
static void t_step(void)
{
	unsigned r = (unsigned)(rnd(&T.rng) % 100);
	uint64_t a, ra;
	if (r < 45 && T.n < MAXB - 32) {
		unsigned k = (unsigned)(rnd(&T.rng) % 7);
		int rc = buddy_alloc(t_cpu(), k, &a);
		if (rc == BUDDY_OK) {
			CHECK_EQ(buddy_locked_alloc_at(T.ref, a, k), BUDDY_OK);
			t_add(a, k);
		} else {
			CHECK_EQ(rc, BUDDY_ENOMEM);
			CHECK_EQ(buddy_locked_alloc(T.ref, k, &ra),
				 BUDDY_ENOMEM);
		}
	} else if (r < 55 && T.n < MAXB - 32) {
		uint64_t n = 1 + rnd(&T.rng) % 70;
		int rc = buddy_alloc_run(t_cpu(), n, &a);
		if (rc == BUDDY_OK) {
			t_add_run(a, n);
		} else {
			CHECK_EQ(rc, BUDDY_ENOMEM);
			CHECK_EQ(buddy_locked_alloc_run(T.ref, n, &ra),
				 BUDDY_ENOMEM);
		}
	} else if (r < 95 && T.n > 0) {
		unsigned i = (unsigned)(rnd(&T.rng) % T.n);
		struct blk b = T.b[i];
		CHECK_EQ(buddy_free(t_cpu(), b.a, b.k), BUDDY_OK);
		CHECK_EQ(buddy_locked_free(T.ref, b.a, b.k), BUDDY_OK);
		T.b[i] = T.b[--T.n];
	} else {
		buddy_cpu_drain(t_cpu());
	}
}

/* alloc_below(k, limit) as the oracle says; a success undone. */
static void t_below(unsigned k, uint64_t limit)
{
	uint64_t a, ra;
	struct buddy_cpu *c = t_cpu();
	int rc = buddy_alloc_below(c, k, limit, &a);
	if (rc != BUDDY_OK) {
		CHECK_EQ(rc, BUDDY_ENOMEM);
		int rr = buddy_locked_alloc_below(T.ref, k, limit, &ra);
		CHECK_EQ(rr, BUDDY_ENOMEM);
		if (rr == BUDDY_OK)
			fprintf(stderr,
				"  false ENOMEM: order %u limit %#" PRIx64
				" (oracle %#" PRIx64 ")\n",
				k, limit, ra);
		T.below_no++;
		return;
	}
	CHECK(a % (FS << k) == 0 && a + (FS << k) <= limit);
	CHECK_EQ(buddy_locked_alloc_at(T.ref, a, k), BUDDY_OK);
	CHECK_EQ(buddy_free(t_cpu(), a, k), BUDDY_OK);
	CHECK_EQ(buddy_locked_free(T.ref, a, k), BUDDY_OK);
	T.below_ok++;
}

/* Every limit around and inside the regions, every order below a unit. */
static void t_limits(void)
{
	static const int64_t d[] = { -1, 0, 1 };
	for (uint64_t p = T.lo; p <= T.hi; p++)
		for (unsigned i = 0; i < 3; i++)
			for (unsigned k = 0; k < BUDDY_CORE_SHIFT; k++)
				t_below(k, p * FS + (uint64_t)d[i]);
}

/* alloc_at at every frame, every order below a unit, as the oracle. */
static void t_at(void)
{
	for (uint64_t p = T.lo; p < T.hi; p++)
		for (unsigned k = 0; k < BUDDY_CORE_SHIFT; k++) {
			uint64_t a = p * FS;
			int rc = buddy_alloc_at(t_cpu(), a, k);
			CHECK_EQ(rc, buddy_locked_alloc_at(T.ref, a, k));
			if (rc != BUDDY_OK) {
				T.at_busy += rc == BUDDY_EBUSY;
				continue;
			}
			T.at_ok++;
			CHECK_EQ(buddy_free(t_cpu(), a, k), BUDDY_OK);
			CHECK_EQ(buddy_locked_free(T.ref, a, k), BUDDY_OK);
		}
}

/* Every frame of [lo, hi) as buddy_zone_frame() reports it. */
static void t_snap(unsigned *s)
{
	for (uint64_t p = T.lo; p < T.hi; p++) {
		unsigned kind = 0, o = 0;
		int rc = buddy_zone_frame(T.z, p * FS, &kind, &o);
		s[p - T.lo] = rc == BUDDY_OK ? kind << 8 | o : 0xffff;
	}
}

/*
 * free_run(a, n) as the oracle; a failure changes nothing. A success
 * must free live blocks only (the pieces, each one of ours).
 */
static void t_free_run(uint64_t a, uint64_t n)
{
	static unsigned s0[64 * U], s1[64 * U];
	t_snap(s0);
	int rc = buddy_free_run(t_cpu(), a, n);
	int rr = buddy_locked_free_run(T.ref, a, n);
	CHECK_EQ(rc, rr);
	if (rc != BUDDY_OK) {
		t_snap(s1);
		CHECK(memcmp(s0, s1, (T.hi - T.lo) * sizeof(s0[0])) == 0);
		T.run_bad++;
		return;
	}
	uint64_t off = 0;
	while (off < n) {
		unsigned o = 63u - (unsigned)__builtin_clzll(n - off);
		CHECK(t_del(a + off * FS, o));
		off += (uint64_t)1 << o;
	}
}

static void t_cross(struct buddy_cpu *c, uint64_t u);

/* Bad runs and runs of blocks allocated one by one, some across units. */
static void t_runs(void)
{
	for (unsigned i = 0; i < 40; i++) {
		uint64_t a, n = 1 + rnd(&T.rng) % 100;
		if (T.n > 0 && rnd(&T.rng) % 2) {
			a = T.b[rnd(&T.rng) % T.n].a;
		} else {
			uint64_t p = T.lo + rnd(&T.rng) % (T.hi - T.lo);
			a = p * FS;
		}
		t_free_run(a, n);
	}
	/*
	 * Across two units: blocks of orders 1 and 0 at the end of one and
	 * the start of the next, freed as one run of 3 frames (both words
	 * in one call); then only the first allocated: the second piece is
	 * not, so the run is refused and the first stays allocated.
	 */
	for (unsigned j = 1; j < 14; j++) {
		if (j == 8)
			continue; /* region 0's end */
		uint64_t u = j < 8 ? T.rg[0].base + j * U * FS
				   : T.rg[1].base + (j - 8) * U * FS;
		t_cross(t_cpu(), u);
	}
}

/* The crossing runs at unit boundary u (t_runs()). */
static void t_cross(struct buddy_cpu *c, uint64_t u)
{
	if (buddy_alloc_at(c, u - 2 * FS, 1) == BUDDY_OK) {
		CHECK_EQ(buddy_locked_alloc_at(T.ref, u - 2 * FS, 1), BUDDY_OK);
		t_add(u - 2 * FS, 1);
		if (buddy_alloc_at(c, u, 0) == BUDDY_OK) {
			CHECK_EQ(buddy_locked_alloc_at(T.ref, u, 0), BUDDY_OK);
			t_add(u, 0);
			t_free_run(u - 2 * FS, 3);
			T.cross++;
		} else {
			t_free_run(u - 2 * FS, 3); /* refused: u not ours */
		}
	}
}

static void t_run(uint64_t seed, uint64_t ops)
{
	t_init(seed);
	for (uint64_t op = 0; op < ops; op++) {
		t_step();
		if (op % 64 == 0)
			CHECK_EQ(check_zone(T.z, false), 0);
		if (op % 256 != 128)
			continue;
		t_limits();
		t_at();
		t_runs();
		CHECK_EQ(check_zone(T.z, false), 0);
		struct buddy_stats zs, rs;
		buddy_zone_stats(T.z, &zs);
		buddy_locked_stats(T.ref, &rs);
		CHECK_EQ(zs.free_frames + zs.cached_frames, rs.free_frames);
	}
	while (T.n > 0) {
		struct blk b = T.b[--T.n];
		CHECK_EQ(buddy_free(t_cpu(), b.a, b.k), BUDDY_OK);
		CHECK_EQ(buddy_locked_free(T.ref, b.a, b.k), BUDDY_OK);
	}
	buddy_zone_drain_all(t_cpu());
	CHECK_EQ(check_zone(T.z, true), 0);
	struct buddy_stats st;
	buddy_zone_stats(T.z, &st);
	CHECK_EQ(st.free_frames, st.total_frames);
	CHECK_EQ(st.rejected_by[-BUDDY_ENOTSUP], 0);
	printf("test_buddy_place_v3: seed %" PRIu64 ": alloc_below %" PRIu64
	       " ok %" PRIu64 " ENOMEM; alloc_at %" PRIu64 " ok %" PRIu64
	       " EBUSY; %" PRIu64 " bad runs refused, %" PRIu64
	       " runs across units\n",
	       seed, T.below_ok, T.below_no, T.at_ok, T.at_busy, T.run_bad,
	       T.cross);
	/* Both outcomes of each call seen, or the sweep proved little. */
	CHECK(T.below_ok > 0 && T.below_no > 0 && T.at_ok > 0 &&
	      T.at_busy > 0 && T.run_bad > 0 && T.cross > 0);
	free(T.zm);
	free(T.rm);
}

/* ---- threads ---- */

#define S_HELD 64
#define S_MAIL 64
#define S_UNITS 256

struct s_blk {
	uint64_t a;
	uint64_t n; /* frames */
	unsigned k; /* order; 99: a run of n frames */
};

static struct {
	struct buddy_zone *z;
	_Atomic uint64_t mail[S_MAIL]; /* s_pack() of a block, or 0 */
	_Atomic uint8_t *owner;        /* per frame: thread + 1 */
	uint64_t base, ops;
	_Atomic uint64_t below, at, runs, small_runs, allocs, cross, busy;
} S;

static void s_stamp(struct s_blk b, uint8_t t)
{
	uint64_t p = (b.a - S.base) / FS;
	for (uint64_t i = 0; i < b.n; i++) {
		uint8_t old = atomic_exchange(&S.owner[p + i], t);
		if ((t == 0) == (old == 0))
			CHECK_FATAL(!"B2: a frame handed out twice, or freed "
				     "unowned");
	}
}

/* A block in one word: its address, n << 1, 1 if a run. */
static uint64_t s_pack(struct s_blk b)
{
	return b.a | b.n << 1 | (b.k == 99);
}

static struct s_blk s_unpack(uint64_t v)
{
	uint64_t n = (v >> 1) & 0x7ff;
	unsigned k = (v & 1) ? 99 : 63u - (unsigned)__builtin_clzll(n);
	return (struct s_blk){ v & ~(uint64_t)(FS - 1), n, k };
}

static void s_free(unsigned i, struct s_blk b)
{
	struct buddy_cpu *c = buddy_zone_cpu(S.z, i);
	s_stamp(b, 0);
	int rc = b.k == 99 ? buddy_free_run(c, b.a, b.n)
			   : buddy_free(c, b.a, b.k);
	CHECK_FATAL(rc == BUDDY_OK);
}

/* One allocation of some kind: the block, or false. */
static bool s_alloc(struct buddy_cpu *c, uint64_t *rng, struct s_blk *b)
{
	unsigned r = (unsigned)(rnd(rng) % 100), k = (unsigned)(rnd(rng) % 7);
	uint64_t a;
	if (r < 30) {
		uint64_t limit = S.base + rnd(rng) % (S_UNITS * U * FS + FS);
		if (buddy_alloc_below(c, k, limit, &a) != BUDDY_OK)
			return false;
		CHECK_FATAL(a + (FS << k) <= limit);
		atomic_fetch_add(&S.below, 1);
	} else if (r < 50) {
		a = S.base + (rnd(rng) % (S_UNITS * U)) * FS;
		a &= ~((FS << k) - 1);
		int rc = buddy_alloc_at(c, a, k);
		if (rc != BUDDY_OK) {
			CHECK_FATAL(rc == BUDDY_EBUSY);
			atomic_fetch_add(&S.busy, 1);
			return false;
		}
		atomic_fetch_add(&S.at, 1);
	} else if (r < 70) {
		uint64_t n = 1 + rnd(rng) % 100;
		if (buddy_alloc_run(c, n, &a) != BUDDY_OK)
			return false;
		*b = (struct s_blk){ a, n, 99 };
		atomic_fetch_add(n % U ? &S.small_runs : &S.runs, 1);
		return true;
	} else {
		if (buddy_alloc(c, k, &a) != BUDDY_OK)
			return false;
		atomic_fetch_add(&S.allocs, 1);
	}
	CHECK_FATAL(a % (FS << k) == 0);
	*b = (struct s_blk){ a, (uint64_t)1 << k, k };
	return true;
}

static void *s_thread(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	struct buddy_cpu *c = buddy_zone_cpu(S.z, i);
	struct s_blk held[S_HELD], b;
	unsigned n = 0;
	uint64_t rng = 0x9e3779b97f4a7c15ull * (i + 1);
	for (uint64_t op = 0; op < S.ops; op++) {
		unsigned r = (unsigned)(rnd(&rng) % 100);
		if (r < 50 && n < S_HELD) {
			if (!s_alloc(c, &rng, &b))
				continue;
			s_stamp(b, (uint8_t)(i + 1));
			held[n++] = b;
		} else if (r < 90 && n > 0) {
			unsigned j = (unsigned)(rnd(&rng) % n);
			b = held[j];
			held[j] = held[--n];
			/* To the mailbox (freed by another thread), or here. */
			unsigned m = (unsigned)(rnd(&rng) % S_MAIL);
			uint64_t zero = 0;
			if ((rnd(&rng) & 1) &&
			    atomic_compare_exchange_strong(&S.mail[m], &zero,
							   s_pack(b)))
				continue;
			s_free(i, b);
		} else if (r < 97) {
			unsigned m = (unsigned)(rnd(&rng) % S_MAIL);
			uint64_t v = atomic_exchange(&S.mail[m], 0);
			if (v != 0) {
				s_free(i, s_unpack(v));
				atomic_fetch_add(&S.cross, 1);
			}
		} else if (r < 99) {
			buddy_cpu_drain(c);
		} else {
			buddy_zone_drain_all(c);
		}
	}
	while (n > 0)
		s_free(i, held[--n]);
	buddy_cpu_drain(c);
	return NULL;
}

static int s_run(unsigned nt, uint64_t ops)
{
	uint64_t f = FS * U;
	struct buddy_region rg = { 64 * f, S_UNITS * f };
	size_t sz = buddy_meta_size(&rg, 1, nt);
	CHECK_FATAL(sz != 0 && nt <= 4);
	void *meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(meta != NULL);
	CHECK_FATAL(buddy_zone_init(&S.z, meta, sz, &rg, 1, nt) == BUDDY_OK);
	S.owner = calloc(S_UNITS * U, 1);
	CHECK_FATAL(S.owner != NULL);
	S.base = rg.base;
	S.ops = ops;
	pthread_t th[4];
	for (unsigned i = 0; i < nt; i++)
		CHECK_FATAL(pthread_create(&th[i], NULL, s_thread,
					   (void *)(uintptr_t)i) == 0);
	for (unsigned i = 0; i < nt; i++)
		pthread_join(th[i], NULL);
	for (unsigned m = 0; m < S_MAIL; m++) {
		uint64_t v = atomic_exchange(&S.mail[m], 0);
		if (v != 0)
			s_free(0, s_unpack(v));
	}
	buddy_cpu_drain(buddy_zone_cpu(S.z, 0));
	CHECK_EQ(check_zone(S.z, false), 0);
	buddy_zone_drain_all(buddy_zone_cpu(S.z, 0));
	CHECK_EQ(check_zone(S.z, true), 0);
	struct buddy_stats st;
	buddy_zone_stats(S.z, &st);
	CHECK_EQ(st.free_frames, st.total_frames);
	for (uint64_t p = 0; p < S_UNITS * U; p++)
		CHECK_EQ(atomic_load(&S.owner[p]), 0);
	printf("stress_buddy_place_v3: %u threads x %" PRIu64
	       " ops: alloc_below %" PRIu64 ", alloc_at %" PRIu64
	       " (EBUSY %" PRIu64 "), runs %" PRIu64 " whole units + %" PRIu64
	       " with a piece below a unit, %" PRIu64 " plain, %" PRIu64
	       " cross frees\n",
	       nt, ops, atomic_load(&S.below), atomic_load(&S.at),
	       atomic_load(&S.busy), atomic_load(&S.runs),
	       atomic_load(&S.small_runs), atomic_load(&S.allocs),
	       atomic_load(&S.cross));
	/* A torture that did nothing proves nothing. */
	CHECK(atomic_load(&S.below) > 0 && atomic_load(&S.at) > 0 &&
	      atomic_load(&S.small_runs) > 0 && atomic_load(&S.runs) > 0 &&
	      atomic_load(&S.cross) > 0 && atomic_load(&S.allocs) > 0);
	free(S.owner);
	free(meta);
	return check_exit("stress_buddy_place_v3");
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "stress") == 0)
		return s_run((unsigned)atoi(argv[2]),
			     strtoull(argv[3], NULL, 10));
	return check_model_main(argc, argv, "test_buddy_place_v3", 8, 4096,
				t_run);
}
