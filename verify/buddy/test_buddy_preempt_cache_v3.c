/*
 * test_buddy_preempt_cache_v3.c: per-CPU block caches over version 3
 * (lf_buddy_units' sources at BUDDY_CORE_SHIFT 5 compiled in, every atomic
 * interposed: verify/preempt.h), attacked one step at a time through the
 * public API alone (docs/v3-status.md item 38). Each case runs a call of
 * one CPU (the victim) preempted before its n-th atomic step, for every
 * n, by a whole call of another CPU (the nested op, on the same thread;
 * abandoned if it would wait for the victim, and then run after it):
 *
 *   df-drain    a second free (CPU 1) of a block in CPU 0's cache vs
 *               CPU 0's buddy_cpu_drain(), both ways round: EDOUBLE;
 *   df-drainall a second free by the cache's owner (CPU 1) vs another
 *               CPU's buddy_zone_drain_all() (a remote drain), both ways
 *               round: EDOUBLE;
 *   df-pop      a second free (CPU 1) of a block in CPU 0's cache vs CPU
 *               0's allocation of its order (which may pop it): EDOUBLE
 *               unless that allocation got the block;
 *   free2       two frees of one held block (the holder's CPU and
 *               another): exactly one succeeds;
 *   refill      CPU 0's allocation (its slow path and refill) vs CPU 1's
 *               free of the block beside the one it takes, which nobody
 *               holds: EDOUBLE unless the allocation got it; each step
 *               classified by what the free meets (the block free in its
 *               word, the refill's mark, its bit) and a table printed:
 *               no step may let it through (docs/v3-status.md item 46);
 *   enomem      every frame held but two, both in CPU 1's cache: CPU 0's
 *               allocation vs CPU 1's drain, CPU 2's drain_all, CPU 1
 *               taking one and freeing it again (a frame free at every
 *               instant): it must succeed (issue 14's windows: memory
 *               moving between a cache and the core while a failing
 *               pass looks); the same at order 1 over two cached buddies;
 *   at          alloc_at of a block in CPU 1's cache vs CPU 1's drain,
 *               CPU 2's drain_all, CPU 1's allocation and free of that
 *               block (which may refill its range into the cache again):
 *               the range is free at every step the victim sees, so no
 *               EBUSY;
 *   free_run    a free_run whose last piece is in CPU 1's cache vs the
 *               same ops: it fails and changes nothing.
 * Every order 0-4 where the case has an order. After each step the zone
 * passes buddy_zone_check and, everything freed and drained, is whole.
 * A step at which the victim holds a cache (its lock, or its owner's
 * entry) runs the nested op after the victim instead (cache_in_use()).
 *
 * late-own, hold-word, hold-run: the lazy clear of the cached bits
 * (docs/v3-status.md items 46 and 47): no clear takes a bit set since the
 * allocation's CAS, and no release takes a bit after its free's CAS.
 *
 * refill-aba (docs/v3-status.md item 54): two preemptions, every pair of
 * steps. CPU 0 allocates order o (0-3), its refill taking blocks of o
 * above its own; before its n1-th step CPU 1 takes the block of order o +
 * 1 over two of them by alloc_at, frees it and drains (the word back to
 * its value); before its n2-th step after that CPU 2 frees the upper of
 * the two, which nobody holds: EDOUBLE.
 *
 * stale-look (docs/v3-status.md item 51): two preemptions, every pair of
 * steps. CPU 0 frees a block B that CPU 1 holds (a racing second free);
 * before its n1-th step CPU 1 frees B, drains, takes and frees B's frames
 * in another shape (the pair B belongs to, or a frame of B's unit after
 * the unit went to the core, or the pair taken by an allocation of order
 * o + 1 whose refill takes it into CPU 1's cache, v3-status item 57) and
 * drains, so that B is free with its bit clear; before its n2-th step after
 * that CPU 2 takes B by alloc_at (and, "cached", frees it into its cache); CPU
 * 0's free a free_run of B's frames in two cases. B's frees must match its
 * allocations (CPU 2's own free of B last, refused if CPU 0's free was a late
 * free of its block) and the zone stay sound (B5).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buddy.h"
#include "buddy_i.h"
#include "check.h"
#include "preempt.h"

#define NCPU 3
#define BASE ((uint64_t)1 << 30)
#define F BUDDY_FRAME_SIZE
#define UF 32u
#define UNITS 4
#define NF (UNITS * UF)

static struct buddy_zone *z;
static struct buddy_cpu *c[NCPU];
static void *meta;
static uint8_t held[NF]; /* 1 + order at a held block's head */

static uint64_t ad(uint64_t f)
{
	return BASE + f * F;
}

static uint64_t fr(uint64_t a)
{
	return (a - BASE) / F;
}

static void setup(void)
{
	struct buddy_region rg = { BASE, (uint64_t)NF * F };
	size_t sz = buddy_meta_size(&rg, 1, NCPU);
	free(meta);
	meta = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	CHECK_FATAL(meta);
	CHECK_FATAL(buddy_zone_init(&z, meta, sz, &rg, 1, NCPU) == BUDDY_OK);
	for (unsigned i = 0; i < NCPU; i++) {
		c[i] = buddy_zone_cpu(z, i);
		buddy_cpu_cache_enable(c[i], true);
	}
	memset(held, 0, sizeof(held));
}

static void hold(uint64_t a, unsigned o)
{
	held[fr(a)] = (uint8_t)(1 + o);
}

static void unhold(uint64_t a)
{
	held[fr(a)] = 0;
}

/* The zone checks, then everything held freed and drained: whole. */
static bool whole(void)
{
	uint64_t f = 0;
	int inv = buddy_zone_check(z, false, &f);
	for (uint64_t i = 0; i < NF; i++)
		if (held[i]) {
			CHECK_EQ(buddy_free(c[i % NCPU], ad(i), held[i] - 1u),
				 BUDDY_OK);
			held[i] = 0;
		}
	for (unsigned i = 0; i < NCPU; i++)
		buddy_cpu_drain(c[i]);
	buddy_zone_drain_all(c[0]);
	if (inv == 0)
		inv = buddy_zone_check(z, true, &f);
	struct buddy_stats st;
	buddy_zone_stats(z, &st);
	if (inv != 0)
		fprintf(stderr, "  zone: invariant B%d broken at %llu\n", inv,
			(unsigned long long)f);
	if (st.free_frames + st.cached_frames != NF)
		fprintf(stderr, "  zone: %llu + %llu frames free of %u\n",
			(unsigned long long)st.free_frames,
			(unsigned long long)st.cached_frames, NF);
	return inv == 0 && st.free_frames + st.cached_frames == NF;
}

/* ---- the state of one step ---- */

struct st {
	unsigned o;
	uint64_t blk, blk2; /* the block the frees name; a second one */
	uint64_t got;       /* an allocation's block */
	int rc, nrc;        /* the victim's and the nested op's results */
	bool nran;          /* the nested op completed */
	bool nskip;         /* it was skipped (cache_in_use()) */
	unsigned run_n;     /* free_run: the run's frames */
};

static struct st S;

/* Nested ops: each a whole call of another CPU. */
static void op_drain0(void *arg)
{
	(void)arg;
	buddy_cpu_drain(c[0]);
}

static void op_drain1(void *arg)
{
	(void)arg;
	buddy_cpu_drain(c[1]);
}

static void op_drainall2(void *arg)
{
	(void)arg;
	buddy_zone_drain_all(c[2]);
}

static void op_drainall0(void *arg)
{
	(void)arg;
	buddy_zone_drain_all(c[0]);
}

static void op_free1(void *arg)
{
	(void)arg;
	S.nrc = buddy_free(c[1], S.blk, S.o);
}

/*
 * The refill case's free, classified before it runs by what it meets in
 * the block's unit (the harness's look, buddy_i.h): 0 the block free in
 * its word (the refill's CAS not yet), 1 allocated with the refill's
 * mark and no bit (after its CAS, before its bits: the free waits for
 * the refill), 2 its bit set, 3 allocated with neither (nothing refuses
 * it but the word's later look), 4 another block (the allocation's own).
 */
static unsigned refill_cat;

static void op_free1_peek(void *arg)
{
	struct bl_zone *l = &z->lower;
	uint32_t x = (uint32_t)fr(S.blk), u = x / UF, i = x % UF;
	/* Relaxed: single-threaded; only a look. */
	uint64_t w = lf_load_u64(&l->word[BU_W(u)], LF_RELAXED);
	uint64_t m = lf_load_u64(&l->mask[BU_W(u)], LF_RELAXED);
	if (w == BU_CORE || bu_block_check(w, i, S.o) != BUDDY_OK)
		refill_cat = 0;
	else if (m & (1ull << i))
		refill_cat = 2;
	else
		refill_cat = 3;
	op_free1(arg);
}

static void op_free0(void *arg)
{
	(void)arg;
	S.nrc = buddy_free(c[0], S.blk, S.o);
}

static void op_alloc0(void *arg)
{
	(void)arg;
	S.nrc = buddy_alloc(c[0], S.o, &S.got);
}

/* CPU 1 allocates a block of S.o and frees it again (a cached block). */
static void op_cycle1(void *arg)
{
	(void)arg;
	uint64_t a;
	S.nrc = buddy_alloc(c[1], S.o, &a);
	if (S.nrc == BUDDY_OK)
		CHECK_EQ(buddy_free(c[1], a, S.o), BUDDY_OK);
}

/* CPU 1 takes S.blk by alloc_at and frees it into its cache. */
static void op_at_cycle1(void *arg)
{
	(void)arg;
	S.nrc = buddy_alloc_at(c[1], S.blk, S.o);
	if (S.nrc == BUDDY_OK)
		S.nrc = buddy_free(c[1], S.blk, S.o);
}

static void (*nested_fn)(void *);

static bool verbose; /* PREEMPT_VERBOSE set: each step named first */

/*
 * Is a cache in use by the preempted call (its lock held, or its owner
 * inside it)? A nested op would wait on it, and one abandoned after it
 * took a lock or entered its cache would leave the victim waiting for
 * ever: such a step is skipped (the op runs after the victim), as in
 * test_buddy_preempt's window. The harness's only look inside the
 * allocator (buddy_i.h); version 3 without caches has none.
 */
static bool cache_in_use(void)
{
#if BUDDY_HAS_CACHE
	for (unsigned i = 0; i < NCPU; i++)
		/* Relaxed: single-threaded; only a peek. */
		if (lf_spin_held(&c[i]->lock, LF_RELAXED) ||
		    lf_load_u32(&c[i]->own, LF_RELAXED) != 0)
			return true;
#endif
	return false;
}

static unsigned long skipped;

static void nested(void *arg)
{
	if (cache_in_use()) {
		skipped++;
		S.nskip = true;
		if (verbose)
			fprintf(stderr, "  a cache in use: skipped\n");
		return;
	}
	S.nran = preempt_nested_try(nested_fn, arg);
	if (verbose)
		fprintf(stderr, "  the nested op %s\n",
			S.nran ? "ran" : "was abandoned (it would wait)");
}

struct pcase {
	const char *name;
	void (*setup)(unsigned o);
	int (*victim)(void);
	void (*op)(void *);
	/* false: report; the step's state is in S, rc in S.rc. */
	bool (*ok)(void);
};

static unsigned long steps_total, abandoned;

/*
 * The refill case, step by step: where the preempted allocation was when
 * CPU 1's free of the block beside its own ran, and how it was refused
 * (docs/v3-status.md item 46). Columns: the block free in its word, the
 * refill's mark (the free waited for the refill: abandoned nested, then
 * run after it), its bit, neither (none expected), the op run after the
 * victim (step 0, or a cache in use).
 */
static unsigned long refill_tab[5][5];

static void refill_tally(unsigned long n, bool fired, unsigned o)
{
	unsigned k = !fired || n == 0 ? 4 : S.nskip ? 4 : refill_cat;
	if (fired && n != 0 && !S.nskip && !S.nran)
		k = refill_cat == 1 ? 1 : 3; /* abandoned: it waited */
	refill_tab[o][k]++;
	if (verbose)
		fprintf(stderr, "  refill order %u step %lu: class %u, %d\n", o,
			n, k, S.nrc);
}

/* Step n = 0: not preempted (the nested op after the victim). */
static void run_case(const struct pcase *pc, unsigned o)
{
	unsigned long k = 0, bad = 0;
	for (unsigned long n = 0; n == 0 || n <= k; n++) {
		if (verbose)
			fprintf(stderr, "%s order %u step %lu of %lu\n",
				pc->name, o, n, k);
		pc->setup(o);
		S.nrc = 99;
		S.nran = false;
		S.nskip = false;
		nested_fn = pc->op;
		if (n == 0)
			preempt_arm(0, NULL, NULL);
		else
			preempt_arm(n, nested, NULL);
		S.rc = pc->victim();
		if (n == 0)
			k = preempt_count();
		bool fired = preempt_disarm();
		if (fired && !S.nran && !S.nskip)
			abandoned++;
		if (pc->op == op_free1_peek) /* before it runs again */
			refill_tally(n, fired, o);
		if (!fired || !S.nran) {
			pc->op(NULL); /* after the victim */
			S.nran = true;
		}
		bool good = pc->ok();
		CHECK(good);
		if (!good && bad++ < 3)
			fprintf(stderr,
				"%s order %u: step %lu of %lu: victim %d, "
				"nested %d\n",
				pc->name, o, n, k, S.rc, S.nrc);
		CHECK(whole());
	}
	steps_total += k + 1;
}

/* ---- setups ---- */

/* S.blk of order o in CPU 0's cache (allocated and freed there). */
static void su_cached0(unsigned o)
{
	setup();
	S.o = o;
	CHECK_FATAL(buddy_alloc(c[0], o, &S.blk) == BUDDY_OK);
	CHECK_FATAL(buddy_free(c[0], S.blk, o) == BUDDY_OK);
}

/* S.blk in CPU 1's cache (allocated on CPU 0, freed on CPU 1). */
static void su_cached1(unsigned o)
{
	setup();
	S.o = o;
	CHECK_FATAL(buddy_alloc(c[0], o, &S.blk) == BUDDY_OK);
	CHECK_FATAL(buddy_free(c[1], S.blk, o) == BUDDY_OK);
}

/* S.blk held by CPU 0. */
static void su_held0(unsigned o)
{
	setup();
	S.o = o;
	CHECK_FATAL(buddy_alloc(c[0], o, &S.blk) == BUDDY_OK);
}

/* Nothing held; S.blk the neighbour of what CPU 0's allocation takes. */
static uint64_t refill_first[5];

static void su_refill(unsigned o)
{
	setup();
	S.o = o;
	if (!refill_first[o]) {
		uint64_t a;
		CHECK_FATAL(buddy_alloc(c[0], o, &a) == BUDDY_OK);
		refill_first[o] = a;
		setup();
	}
	S.blk = ad(fr(refill_first[o]) ^ (1u << o));
}

/* Nothing held; S.blk the very block CPU 0's allocation takes. */
static void su_refill_own(unsigned o)
{
	su_refill(o);
	S.blk = refill_first[o];
}

/*
 * Every frame held (by CPU 0) but two: S.blk and S.blk2, freed into CPU
 * 1's cache; at order 1 four (two pairs of buddies).
 */
static void su_full(unsigned o)
{
	setup();
	S.o = o;
	uint64_t a;
	for (unsigned i = 0; i < NF; i++) {
		CHECK_FATAL(buddy_alloc_at(c[0], ad(i), 0) == BUDDY_OK);
		hold(ad(i), 0);
	}
	(void)a;
	unsigned n = 2u << o; /* two blocks of order o */
	for (unsigned i = 40; i < 40 + n; i++) {
		CHECK_FATAL(buddy_free(c[1], ad(i), 0) == BUDDY_OK);
		unhold(ad(i));
	}
	S.blk = ad(40);
	S.blk2 = ad(40 + (1u << o));
}

/* A run of S.run_n frames held by CPU 0, its last piece in CPU 1's cache. */
static unsigned su_run_lo(unsigned n)
{
	unsigned lo = 0;
	while (!(n & (1u << lo)))
		lo++;
	return lo;
}

static void su_run(unsigned o)
{
	static const unsigned runs[] = { 3, 6, 7, 12, 24 };
	setup();
	S.run_n = runs[o];
	CHECK_FATAL(buddy_alloc_run(c[0], S.run_n, &S.blk) == BUDDY_OK);
	S.o = su_run_lo(S.run_n);
	S.blk2 = S.blk + (uint64_t)(S.run_n - (1u << S.o)) * F;
	CHECK_FATAL(buddy_free(c[1], S.blk2, S.o) == BUDDY_OK);
}

/* S.blk held by CPU 0; CPU 2's cache off (its frees go into the word). */
static void su_held0_word2(unsigned o)
{
	su_held0(o);
	buddy_cpu_cache_enable(c[2], false);
}

/*
 * A run held by CPU 0 inside one unit (3, 5, 6, 12 or 24 frames); S.blk2
 * the run, S.blk and S.o its first piece (the largest, at its start).
 */
static void su_run3(unsigned o)
{
	static const unsigned runs[] = { 3, 5, 6, 12, 24 };
	setup();
	S.run_n = runs[o];
	CHECK_FATAL(buddy_alloc_run(c[0], S.run_n, &S.blk2) == BUDDY_OK);
	S.blk = S.blk2;
	S.o = 31u - (unsigned)__builtin_clz(S.run_n);
}

/* ---- victims ---- */

static int v_free1(void)
{
	return buddy_free(c[1], S.blk, S.o);
}

static int v_free2(void)
{
	return buddy_free(c[2], S.blk, S.o);
}

static int v_free_run3(void)
{
	return buddy_free_run(c[0], S.blk2, S.run_n);
}

static int v_free0(void)
{
	return buddy_free(c[0], S.blk, S.o);
}

static int v_drain0(void)
{
	buddy_cpu_drain(c[0]);
	return 0;
}

static int v_drainall0(void)
{
	buddy_zone_drain_all(c[0]);
	return 0;
}

static int v_alloc0(void)
{
	return buddy_alloc(c[0], S.o, &S.got);
}

static int v_alloc0_full(void)
{
	int rc = buddy_alloc(c[0], S.o, &S.got);
	if (rc == BUDDY_OK)
		hold(S.got, S.o);
	return rc;
}

static int v_at0(void)
{
	int rc = buddy_alloc_at(c[0], S.blk, S.o);
	if (rc == BUDDY_OK)
		hold(S.blk, S.o);
	return rc;
}

static int v_free_run0(void)
{
	return buddy_free_run(c[0], S.blk, S.run_n);
}

/* ---- checks ---- */

static bool ok_victim_edouble(void)
{
	return S.rc == BUDDY_EDOUBLE;
}

static bool ok_nested_edouble(void)
{
	return S.nrc == BUDDY_EDOUBLE;
}

static bool ok_one_of_two(void)
{
	bool one = (S.rc == BUDDY_OK) + (S.nrc == BUDDY_OK) == 1;
	bool other = S.rc == BUDDY_EDOUBLE || S.nrc == BUDDY_EDOUBLE;
	return one && other;
}

/* The victim's second free vs the owner's allocation (which may pop it). */
static bool ok_df_pop(void)
{
	if (S.nrc == BUDDY_OK && S.got == S.blk) {
		/* Ours, unless the free came first and it was popped. */
		if (S.rc != BUDDY_OK)
			hold(S.got, S.o);
		return S.rc == BUDDY_OK || S.rc == BUDDY_EDOUBLE;
	}
	if (S.nrc == BUDDY_OK)
		hold(S.got, S.o);
	return S.rc == BUDDY_EDOUBLE;
}

static bool ok_refill(void)
{
	if (S.rc != BUDDY_OK)
		return false;
	if (S.got == S.blk) {
		if (S.nrc != BUDDY_OK)
			hold(S.got, S.o);
		return S.nrc == BUDDY_OK || S.nrc == BUDDY_EDOUBLE;
	}
	hold(S.got, S.o);
	return S.nrc == BUDDY_EDOUBLE;
}

/*
 * A free of the block the allocation takes, which nobody held before:
 * refused, or (after the allocation's CAS) a late free that succeeds, the
 * block then free to the allocator: the allocator's own free of it must
 * then be refused (exactly one of the two frees), and the zone sound.
 */
static bool ok_refill_own(void)
{
	if (S.rc != BUDDY_OK || S.got != S.blk)
		return false;
	if (S.nrc == BUDDY_EDOUBLE) {
		hold(S.got, S.o);
		return true;
	}
	uint64_t f = 0;
	if (S.nrc != BUDDY_OK || buddy_zone_check(z, false, &f) != 0)
		return false; /* e.g. its slot without its bit (B5) */
	return buddy_free(c[0], S.got, S.o) == BUDDY_EDOUBLE;
}

/*
 * CPU 2's free into the word vs CPU 1's alloc_at and free of the block:
 * both succeed once the block is free (the nested pair, else EBUSY and
 * nothing), and the zone must stay sound (the cached block's bit set).
 */
static bool ok_word_free(void)
{
	return S.rc == BUDDY_OK && (S.nrc == BUDDY_OK || S.nrc == BUDDY_EBUSY);
}

static bool ok_success(void)
{
	return S.rc == BUDDY_OK;
}

/* free_run failed and changed nothing: the run's other frames held. */
static bool ok_free_run(void)
{
	if (S.rc == BUDDY_OK)
		return false;
	bool ok = buddy_alloc_at(c[2], S.blk, 0) == BUDDY_EBUSY;
	/* Take the piece back (it is free wherever the op left it). */
	int rc = buddy_alloc_at(c[0], S.blk2, S.o);
	ok = ok && rc == BUDDY_OK;
	ok = ok && buddy_free_run(c[0], S.blk, S.run_n) == BUDDY_OK;
	return ok;
}

static const struct pcase cases[] = {
	{ "df-drain (free vs drain)", su_cached0, v_free1, op_drain0,
	  ok_victim_edouble },
	{ "df-drain (drain vs free)", su_cached0, v_drain0, op_free1,
	  ok_nested_edouble },
	{ "df-drainall (owner's free vs remote drain)", su_cached1, v_free1,
	  op_drainall0, ok_victim_edouble },
	{ "df-drainall (remote drain vs owner's free)", su_cached1, v_drainall0,
	  op_free1, ok_nested_edouble },
	{ "df-pop (free vs the owner's allocation)", su_cached0, v_free1,
	  op_alloc0, ok_df_pop },
	{ "free2 (the holder's free vs another's)", su_held0, v_free0, op_free1,
	  ok_one_of_two },
	{ "free2 (another's free vs the holder's)", su_held0, v_free1, op_free0,
	  ok_one_of_two },
	{ "refill (allocation vs a free beside it)", su_refill, v_alloc0,
	  op_free1_peek, ok_refill },
	{ "at (alloc_at vs the cache's drain)", su_cached1, v_at0, op_drain1,
	  ok_success },
	{ "at (alloc_at vs a remote drain)", su_cached1, v_at0, op_drainall2,
	  ok_success },
	{ "at (alloc_at vs the block taken and freed again)", su_cached1, v_at0,
	  op_cycle1, ok_success },
	{ "free_run (vs the cache's drain)", su_run, v_free_run0, op_drain1,
	  ok_free_run },
	{ "free_run (vs a remote drain)", su_run, v_free_run0, op_drainall2,
	  ok_free_run },
	{ "free_run (vs the piece taken and freed again)", su_run, v_free_run0,
	  op_cycle1, ok_free_run },
	/*
	 * The lazy clear (items 46, 47): an allocation clears only the bits
	 * it saw before its CAS (bl_mask_clear()); a free into the word and
	 * a free_run leave their holds after their CAS. late-own: a free of
	 * the block the allocation takes, which nobody held, injected at
	 * every step (between the CAS and the clear: a late free, allowed,
	 * whose bit the clear must leave; the allocation's own free is then
	 * refused). hold-word, hold-run: CPU 1 takes the block by alloc_at
	 * and frees it into its cache at every step of a free into the word
	 * (CPU 2, cache off) or a free_run; no release takes CPU 1's bit (B5).
	 */
	{ "late-own (allocation vs a free of the block it takes)",
	  su_refill_own, v_alloc0, op_free1, ok_refill_own },
	{ "hold-word (a free into the word vs the block taken and cached)",
	  su_held0_word2, v_free2, op_at_cycle1, ok_word_free },
	{ "hold-run (a free_run vs its piece taken and cached)", su_run3,
	  v_free_run3, op_at_cycle1, ok_word_free },
};

/*
 * stale-look (docs/v3-status.md item 51; docs/design.md 2.7, "Bits and
 * the lazy clear"): a free whose first look at the word is older than a
 * free of its block, an allocation and a free of the frames in another
 * shape (or the unit's trip to the core) must not set its bit on the free
 * block and then go on as a late free of the block an allocation takes
 * between its bit and its second look.
 */
struct aba {
	const char *name;
	bool word;   /* CPU 0's cache off: its free goes into the word */
	bool core;   /* the other shape after a trip to the core */
	bool cached; /* CPU 2 frees B into its cache after taking it */
	bool run;    /* CPU 0's free is a free_run of B's frames */
	/*
	 * CPU 1's cache off: its frees go into the word, their holds left
	 * on the freed heads (item 55: each such CAS advances the mask's
	 * version, which the cached free's 8-byte CAS compares)
	 */
	bool word1;
	/*
	 * CPU 1's other shape: an allocation of order o + 1 (its refill
	 * takes B's pair into its cache: the stale bit on B's head cleared,
	 * the pair's set, the version advanced, item 57), freed and drained
	 */
	bool refill;
};

static const struct aba *aba_v;
static unsigned long aba_n2;
static int aba_rc1, aba_rc2, aba_rc2f;
static bool aba_ran2, aba_fired2, aba_skip;

/* CPU 2 takes B (alloc_at) and, "cached", frees it again. */
static void aba_op2_body(void *arg)
{
	(void)arg;
	aba_rc2 = buddy_alloc_at(c[2], S.blk, S.o);
	aba_rc2f = 99;
	if (aba_rc2 == BUDDY_OK && aba_v->cached)
		aba_rc2f = buddy_free(c[2], S.blk, S.o);
}

/* The second preemption (abandoned if it would wait: run after). */
static void aba_op2(void *arg)
{
	(void)arg;
	aba_fired2 = true;
	aba_ran2 = !cache_in_use() && preempt_nested_try(aba_op2_body, NULL);
}

static void aba_op1_body(void *arg)
{
	(void)arg;
	/* The other shape: the pair [0, 2^(o+1)), or frame 0 (core). */
	unsigned so = aba_v->core ? 0 : S.o + 1;
	aba_rc1 = buddy_free(c[1], S.blk, S.o);
	buddy_cpu_drain(c[1]);
	if (aba_v->refill) {
		uint64_t a;
		if (buddy_alloc(c[1], S.o + 1, &a) == BUDDY_OK)
			CHECK_EQ(buddy_free(c[1], a, S.o + 1), BUDDY_OK);
		buddy_cpu_drain(c[1]);
		return;
	}
	if (buddy_alloc_at(c[1], ad(0), so) == BUDDY_OK) {
		CHECK_EQ(buddy_free(c[1], ad(0), so), BUDDY_OK);
		buddy_cpu_drain(c[1]);
	}
}

/* The first preemption: CPU 1's part, then the second one armed. */
static void aba_op1(void *arg)
{
	(void)arg;
	if (cache_in_use()) {
		aba_skip = true;
		return;
	}
	if (!preempt_nested_try(aba_op1_body, NULL)) {
		aba_skip = true; /* it would wait for CPU 0: not this step */
		return;
	}
	preempt_arm(aba_n2, aba_op2, NULL);
}

/*
 * B = [2^o, 2^(o+1)), held by CPU 1 (alloc_at); frame 31 held too unless
 * the unit is to go to the core (its last frame freed by CPU 1's drain).
 */
static void su_aba(unsigned o)
{
	setup();
	S.o = o;
	S.blk = ad(1u << o);
	CHECK_FATAL(buddy_alloc_at(c[1], S.blk, o) == BUDDY_OK);
	if (!aba_v->core) {
		CHECK_FATAL(buddy_alloc_at(c[1], ad(31), 0) == BUDDY_OK);
		hold(ad(31), 0);
	}
	buddy_cpu_cache_enable(c[0], !aba_v->word);
	buddy_cpu_cache_enable(c[1], !aba_v->word1);
}

/* Every pair (n1, n2) of CPU 0's free; false if one broke B or the zone. */
static bool run_aba(const struct aba *v, unsigned o)
{
	unsigned long bad = 0;
	aba_v = v;
	for (unsigned long n1 = 1;; n1++) {
		bool more = false;
		for (aba_n2 = 1;; aba_n2++) {
			if (verbose)
				fprintf(stderr, "%s order %u steps %lu %lu\n",
					v->name, o, n1, aba_n2);
			su_aba(o);
			aba_rc1 = aba_rc2 = aba_rc2f = 99;
			aba_ran2 = aba_fired2 = aba_skip = false;
			preempt_arm(n1, aba_op1, NULL);
			int rc = v->run ? buddy_free_run(c[0], S.blk, 1u << o)
					: buddy_free(c[0], S.blk, o);
			bool fired = preempt_disarm();
			more = fired;
			if (!fired || aba_skip)
				break; /* past the victim's end, or skipped */
			bool second = aba_ran2;
			if (!second)
				aba_op2_body(NULL); /* after the victim */
			/*
			 * B allocated once in setup, once more by CPU 2's
			 * alloc_at; freed by CPU 1, CPU 0, CPU 2's free
			 * ("cached") and CPU 2's last free (refused after a
			 * late free of its block by CPU 0).
			 */
			uint64_t f = 0;
			int inv = buddy_zone_check(z, false, &f);
			unsigned allocs = 1 + (aba_rc2 == BUDDY_OK), frees = 0;
			frees += aba_rc1 == BUDDY_OK;
			frees += rc == BUDDY_OK;
			frees += aba_rc2f == BUDDY_OK;
			int last = 99;
			if (aba_rc2 == BUDDY_OK && !v->cached)
				last = buddy_free(c[2], S.blk, o);
			frees += last == BUDDY_OK;
			bool good = inv == 0 && frees == allocs &&
				    (rc == BUDDY_OK || rc == BUDDY_EDOUBLE) &&
				    (last == 99 || last == BUDDY_OK ||
				     last == BUDDY_EDOUBLE);
			CHECK(good);
			if (!good && bad++ < 3)
				fprintf(stderr,
					"%s order %u: steps %lu, %lu%s: B%d at "
					"%llu; CPU 1 %d, CPU 0 %d, CPU 2 %d "
					"%d %d: %u frees for %u allocations\n",
					v->name, o, n1, aba_n2,
					second ? "" : " (after)", inv,
					(unsigned long long)f, aba_rc1, rc,
					aba_rc2, aba_rc2f, last, frees, allocs);
			/* A broken zone is set up again, not drained. */
			if (good)
				CHECK(whole());
			steps_total++;
			if (!aba_fired2)
				break; /* n2 past the victim's end */
		}
		if (!more)
			break;
	}
	return bad == 0;
}

static const struct aba aba_cases[] = {
	{ "stale-look (cached free, its pair reshaped)", false, false, false },
	{ "stale-look (cached free, its pair reshaped, cached)", false, false,
	  true },
	{ "stale-look (cached free, a trip to the core)", false, true, false },
	{ "stale-look (cached free, a trip to the core, cached)", false, true,
	  true },
	{ "stale-look (free into the word, its pair reshaped, cached)", true,
	  false, true },
	{ "stale-look (free into the word, a trip to the core, cached)", true,
	  true, true },
	{ "stale-look (free_run, its pair reshaped, cached)", false, false,
	  true, true },
	{ "stale-look (free_run, a trip to the core, cached)", false, true,
	  true, true },
	{ "stale-look (cached free, its pair reshaped in the word)", false,
	  false, false, false, true },
	{ "stale-look (cached free, its pair reshaped in the word, cached)",
	  false, false, true, false, true },
	{ "stale-look (cached free, a trip to the core from the word)", false,
	  true, false, false, true },
	{ "stale-look (cached free, a trip to the core from the word, "
	  "cached)",
	  false, true, true, false, true },
	{ "stale-look (cached free, its pair refilled)", false, false, false,
	  false, false, true },
	{ "stale-look (cached free, its pair refilled, cached)", false, false,
	  true, false, false, true },
};

/*
 * refill-aba (docs/v3-status.md item 54; docs/design.md 2.7, "Bits and
 * the lazy clear"): CPU 0 allocates order o (0-3) in a fresh zone: unit 0
 * comes down as its reservation, [0, 2^o) its block, and its refill takes
 * blocks of order o above it (one CAS against the word and the mask it
 * loaded, which sets their heads' bits; marks on the heads first until
 * docs/v3-status.md item 55). Before its n1-th step CPU 1 takes P = [2^(o+1),
 * 2^(o+2)) by alloc_at (order o + 1: the refill's block T = [3 * 2^o,
 * 2^(o+2)) inside it, T's head not P's), frees P into its cache and
 * drains it (the word back to its value); before its n2-th step after
 * that CPU 2 frees T, which nobody holds: EDOUBLE unless CPU 0's
 * allocation took T itself. With the refill's CAS on the word alone (item
 * 54: P's lazy clear took T's mark; item 55's refill with its mask written
 * after the word's CAS), the CAS succeeded after the drain, and a free of
 * T between it and the cached bits found neither mark nor bit.
 */
static unsigned long ra_n2;
static int ra_rc2;
static bool ra_ran2, ra_fired2, ra_skip;

static void ra_op2_body(void *arg)
{
	(void)arg;
	ra_rc2 = buddy_free(c[2], S.blk2, S.o);
}

/* The second preemption (abandoned if it would wait: run after). */
static void ra_op2(void *arg)
{
	(void)arg;
	ra_fired2 = true;
	ra_ran2 = !cache_in_use() && preempt_nested_try(ra_op2_body, NULL);
}

static void ra_op1_body(void *arg)
{
	(void)arg;
	if (buddy_alloc_at(c[1], S.blk, S.o + 1) == BUDDY_OK) {
		CHECK_EQ(buddy_free(c[1], S.blk, S.o + 1), BUDDY_OK);
		buddy_cpu_drain(c[1]);
	}
}

/* The first preemption: CPU 1's part, then the second one armed. */
static void ra_op1(void *arg)
{
	(void)arg;
	if (cache_in_use() || !preempt_nested_try(ra_op1_body, NULL)) {
		ra_skip = true; /* not this step */
		return;
	}
	preempt_arm(ra_n2, ra_op2, NULL);
}

/* Every pair (n1, n2) of CPU 0's allocation; false if one broke T. */
static bool run_refill_aba(unsigned o)
{
	unsigned long bad = 0;
	for (unsigned long n1 = 1;; n1++) {
		bool more = false;
		for (ra_n2 = 1;; ra_n2++) {
			if (verbose)
				fprintf(stderr,
					"refill-aba order %u steps "
					"%lu %lu\n",
					o, n1, ra_n2);
			setup();
			S.o = o;
			S.blk = ad(2u << o);
			S.blk2 = ad(3u << o);
			ra_rc2 = 99;
			ra_ran2 = ra_fired2 = ra_skip = false;
			preempt_arm(n1, ra_op1, NULL);
			uint64_t got = 0;
			int rc = buddy_alloc(c[0], o, &got);
			bool fired = preempt_disarm();
			more = fired;
			if (!fired || ra_skip)
				break; /* past the victim's end, or skipped */
			bool second = ra_ran2;
			if (!second)
				ra_op2_body(NULL); /* after the victim */
			CHECK_FATAL(rc == BUDDY_OK);
			if (got != S.blk2 || ra_rc2 != BUDDY_OK)
				hold(got, o);
			bool good = ra_rc2 == BUDDY_EDOUBLE ||
				    (got == S.blk2 && ra_rc2 == BUDDY_OK);
			CHECK(good);
			if (!good && bad++ < 3)
				fprintf(stderr,
					"refill-aba order %u: steps %lu, "
					"%lu%s: CPU 0 got %llu, CPU 2's free "
					"of %llu: %d, not EDOUBLE\n",
					o, n1, ra_n2, second ? "" : " (after)",
					(unsigned long long)fr(got),
					(unsigned long long)fr(S.blk2), ra_rc2);
			/* A broken zone is set up again, not drained. */
			if (good)
				CHECK(whole());
			steps_total++;
			if (!ra_fired2)
				break; /* n2 past the victim's end */
		}
		if (!more)
			break;
	}
	return bad == 0;
}

static const struct pcase enomem_cases[] = {
	{ "enomem (vs the cache's drain)", su_full, v_alloc0_full, op_drain1,
	  ok_success },
	{ "enomem (vs a remote drain)", su_full, v_alloc0_full, op_drainall2,
	  ok_success },
	{ "enomem (vs a block taken and freed again)", su_full, v_alloc0_full,
	  op_cycle1, ok_success },
};

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	verbose = getenv("PREEMPT_VERBOSE") != NULL;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (only && strncmp(cases[i].name, only, strlen(only)) != 0)
			continue;
		unsigned long f0 = check_failures;
		for (unsigned o = 0; o < 5; o++)
			run_case(&cases[i], o);
		printf("%s: %s\n", cases[i].name,
		       check_failures == f0 ? "ok" : "FAILED");
		for (unsigned o = 0; cases[i].op == op_free1_peek && o < 5;
		     o++) {
			unsigned long *t = refill_tab[o];
			printf("  order %u: %lu steps: the block free in its "
			       "word %lu, the refill's mark (waited) %lu, its "
			       "bit %lu, neither %lu, run after %lu\n",
			       o, t[0] + t[1] + t[2] + t[3] + t[4], t[0], t[1],
			       t[2], t[3], t[4]);
			CHECK(t[3] == 0);
		}
	}
	for (size_t i = 0; i < sizeof(enomem_cases) / sizeof(enomem_cases[0]);
	     i++) {
		if (only &&
		    strncmp(enomem_cases[i].name, only, strlen(only)) != 0)
			continue;
		unsigned long f0 = check_failures;
		for (unsigned o = 0; o < 2; o++)
			run_case(&enomem_cases[i], o);
		printf("%s: %s\n", enomem_cases[i].name,
		       check_failures == f0 ? "ok" : "FAILED");
	}
	for (size_t i = 0; i < sizeof(aba_cases) / sizeof(aba_cases[0]); i++) {
		if (only && strncmp(aba_cases[i].name, only, strlen(only)) != 0)
			continue;
		bool good = true;
		/* The pair of order 4 is a unit: only the trip to the core. */
		for (unsigned o = 0; o < (aba_cases[i].core ? 5u : 4u); o++)
			good &= run_aba(&aba_cases[i], o);
		printf("%s: %s\n", aba_cases[i].name, good ? "ok" : "FAILED");
	}
	if (!only || strncmp("refill-aba", only, strlen(only)) == 0) {
		bool good = true;
		/* Order 4's P would be a unit: orders 0-3. */
		for (unsigned o = 0; o < 4; o++)
			good &= run_refill_aba(o);
		printf("refill-aba (a refill's CAS vs its frames taken, freed "
		       "and drained): %s\n",
		       good ? "ok" : "FAILED");
	}
	printf("%lu steps, %lu nested ops abandoned, %lu skipped (a cache in "
	       "use), each run after the victim\n",
	       steps_total, abandoned, skipped);
	free(meta);
	return check_exit("test_buddy_preempt_cache_v3");
}
