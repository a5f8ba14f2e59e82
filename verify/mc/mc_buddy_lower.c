/*
 * mc_buddy_lower.c: the lower level of the buddy's version 3 above the
 * unit words (buddy/buddy_lower.c) under the model checker: the listing
 * race and reservations, on a zone of two units and a stand-in source
 * (a flag per unit), each thread one context.
 *
 * Setup: unit 0 is a lower unit, unreserved and full (two order-4 blocks,
 * one held by each of threads 0 and 1) with a stale entry on partial
 * stack 3 (pstk set: it had free frames when it was listed); unit 1 is at
 * the source. Scripts:
 *   0-4  allocate that order (bl_alloc), held by the thread
 *   f    free the oldest block the thread holds
 *   r    release the thread's reservation; c reclaim every empty one
 * Every execution checks:
 *   - B2 at every allocation: nobody holds a frame handed out;
 *   - B1, B3, B4 of the lower level at the end (bl_zone_check): above
 *     all, a unit with free frames is reserved and named, or listed. The
 *     race it is for: a free into the unreserved unit 0 against a popper
 *     that takes unit 0's stale entry and finds it full; if the popper's
 *     look missed the free and the freer saw the entry still there, the
 *     free frames are named by nobody (docs/design.md 2.7, "Listing");
 *   - then everything freed, released and reclaimed: both units back at
 *     the source (nothing lost).
 */
#include <stdio.h>
#include <string.h>

#include "buddy_lower.h"
#include "mc.h"
#include "mc_tests.h"

#define ML_UNITS BL_LINE /* at most; S.n in a configuration */
#define ML_HELD 10

struct ml_cfg {
	const char *script[MC_MAX_THREADS];
	const char *need;
	bool window; /* the set-up of buddy.lower_enomem */
	bool lines;  /* buddy.lower_line: BL_LINE units at the source */
	bool up;     /* buddy.lower_up: one unit, listed, goes up */
	bool pick;   /* buddy.lower_pick: two units listed on one stack */
};

struct ml_block {
	uint32_t f;
	unsigned k;
};

static struct {
	lf_atomic_u64 word[ML_UNITS];
	lf_atomic_u32 plink[ML_UNITS];
	lf_atomic_u16 pstk[ML_UNITS];
	lf_atomic_u32 avail[ML_UNITS];
	struct bl_ctx ctx[MC_MAX_THREADS];
	struct bl_zone z;
	struct ml_block held[MC_MAX_THREADS][ML_HELD];
	unsigned nheld[MC_MAX_THREADS];
	unsigned owner[ML_UNITS * BU_FRAMES];
	uint32_t n; /* units in this configuration */
} S;

static const char *const ml_events[] = { "stale entry dropped",
					 "unit listed by a free",
					 "unit from the source", "stolen" };
static struct mc_cover ml_cover = { .codes = "dlts", .names = ml_events };

static uint32_t ml_take(void *arg)
{
	(void)arg;
	for (uint32_t u = 0; u < S.n; u++) {
		uint32_t one = 1;
		/* Acq_rel: claims the unit; pairs with ml_give's release. */
		if (lf_cas_u32(&S.avail[u], &one, 0, LF_ACQ_REL))
			return u;
	}
	return BL_NONE;
}

static void ml_give(void *arg, uint32_t u)
{
	(void)arg;
	/* Relaxed: a check; the word is 0 by our CAS. */
	MC_ASSERT(lf_load_u64(&S.word[u], LF_RELAXED) == BU_CORE);
	/* Release: pairs with ml_take's CAS. */
	lf_store_u32(&S.avail[u], 1, LF_RELEASE);
}

static bool ml_has(void *arg)
{
	(void)arg;
	for (uint32_t u = 0; u < S.n; u++)
		/* Acquire: pairs with ml_give's release. */
		if (lf_load_u32(&S.avail[u], LF_ACQUIRE) == 1)
			return true;
	return false;
}

static void ml_hold(unsigned t, uint32_t f, unsigned k)
{
	S.held[t][S.nheld[t]++] = (struct ml_block){ f, k };
	for (uint32_t x = f; x < f + (1u << k); x++)
		S.owner[x] = t + 1;
}

/*
 * buddy.lower_enomem: unit 0 reserved by thread 1, whose blocks fill it
 * but frame 31; unit 1 full and unreserved (thread 1's two order-4
 * blocks), no unit at the source. Thread 1 frees a block of unit 1 (it
 * is listed), then allocates frame 31; thread 0 allocates one frame: a
 * frame is free at every instant, so it must not fail.
 */
static void ml_setup_window(void)
{
	uint64_t w = bu_make(0, BU_FRAMES, true);
	lf_init_u32(&S.avail[0], 0);
	lf_init_u32(&S.avail[1], 0);
	ml_hold(1, 32, 4);
	ml_hold(1, 48, 4);
	for (unsigned k = 4, f = 0; f < 31; f += 1u << k, k--) {
		w = bu_put_block(w, f, k);
		ml_hold(1, f, k);
	}
	lf_init_u64(&S.word[0], w);
	w = bu_put_block(bu_put_block(bu_make(0, BU_FRAMES, false), 0, 4), 16,
			 4);
	lf_init_u64(&S.word[1], w);
	lf_init_u32(&S.ctx[1].res, 0);
}

/*
 * buddy.lower_up: the zone's one unit is lower, unreserved and listed
 * (partial stack 4, pstk 5: frames 16-31 free), thread 0 holding the
 * order-4 block at frame 0; the source is empty. Thread 0's free empties
 * the unit, which goes up to the source (word 0) with its partial link
 * still on stack 4; it then comes down again (thread 0 takes it from the
 * source, or pops the old entry) and is released with free frames, so
 * listed, while thread 1 pops the old entry at any point in between.
 * pstk must survive the up transition: if it were lost (the order field
 * of the core word, overwritten by BUSY(5), design.md 2.7), the popper's
 * clear would find 0, or the second listing would push a link that the
 * stale entry's popper still holds (B3: a link on two stacks).
 */
static void ml_setup_up(void)
{
	uint64_t w = bu_put_block(bu_make(0, BU_FRAMES, false), 0, 4);
	lf_init_u64(&S.word[0], w);
	lf_init_u32(&S.avail[0], 0);
	lf_init_u16(&S.pstk[0], 4 + 1);
	MC_ASSERT(lf_stack_push(&S.z.partial[4].s, S.plink, 0) == 0);
	ml_hold(0, 0, 4);
}

/*
 * buddy.lower_pick: both units lower, unreserved and listed on partial
 * stack 3 (pstk 4), the source empty; unit 0 has 8 free frames (24-31),
 * unit 1, on top, 12 (12-23); thread 1 holds every other frame, unit 1's
 * blocks first. A new reservation pops both, takes unit 0 (the fullest)
 * and pushes unit 1 back with its pstk kept, while thread 1 frees into
 * unit 1 (its free sees pstk set and lists nothing: the chain pushed back
 * must name it) and reserves: B3 and B4 at the end, every frame once.
 */
static void ml_setup_pick(void)
{
	uint64_t w = bu_make(0, BU_FRAMES, false);
	w = bu_put_block(bu_put_block(bu_put_block(w, 0, 3), 8, 2), 24, 3);
	lf_init_u64(&S.word[1], w);
	ml_hold(1, 32 + 0, 3);
	ml_hold(1, 32 + 8, 2);
	ml_hold(1, 32 + 24, 3);
	w = bu_put_block(bu_put_block(bu_make(0, BU_FRAMES, false), 0, 4), 16,
			 3);
	lf_init_u64(&S.word[0], w);
	ml_hold(1, 0, 4);
	ml_hold(1, 16, 3);
	for (uint32_t u = 0; u < 2; u++) {
		lf_init_u32(&S.avail[u], 0);
		lf_init_u16(&S.pstk[u], 3 + 1);
		MC_ASSERT(lf_stack_push(&S.z.partial[3].s, S.plink, u) == 0);
	}
}

/* The whole line at the source, taken at once if it is all there. */
static uint32_t ml_take_line(void *arg)
{
	(void)arg;
	uint32_t i;
	for (i = 0; i < BL_LINE; i++) {
		uint32_t one = 1;
		/* Acq_rel: as ml_take(). */
		if (!lf_cas_u32(&S.avail[i], &one, 0, LF_ACQ_REL))
			break;
	}
	if (i == BL_LINE)
		return 0;
	while (i-- > 0)
		/* Release: as ml_give(). */
		lf_store_u32(&S.avail[i], 1, LF_RELEASE);
	return BL_NONE;
}

static void ml_setup(void)
{
	const struct ml_cfg *cfg = mc_cfg();
	memset(&S, 0, sizeof(S));
	S.n = cfg->lines ? BL_LINE : cfg->up ? 1 : 2;
	bl_zone_init(&S.z, S.word, S.plink, S.pstk, S.n,
		     (struct bl_source){ .take = ml_take,
					 .give = ml_give,
					 .has = ml_has,
					 .take_line = cfg->lines ? ml_take_line
								 : NULL },
		     S.ctx, MC_MAX_THREADS);
	if (cfg->lines) {
		for (uint32_t u = 0; u < S.n; u++)
			lf_init_u32(&S.avail[u], 1);
		return;
	}
	if (cfg->window) {
		ml_setup_window();
		return;
	}
	if (cfg->up) {
		ml_setup_up();
		return;
	}
	if (cfg->pick) {
		ml_setup_pick();
		return;
	}
	uint64_t w = bu_make(0, BU_FRAMES, false);
	w = bu_put_block(bu_put_block(w, 0, 4), 16, 4);
	lf_init_u64(&S.word[0], w);
	lf_init_u32(&S.avail[0], 0);
	lf_init_u32(&S.avail[1], 1);
	/* The stale entry: listed at class 3, full since. */
	lf_init_u16(&S.pstk[0], 3 + 1);
	MC_ASSERT(lf_stack_push(&S.z.partial[3].s, S.plink, 0) == 0);
	for (unsigned t = 0; t < 2; t++)
		ml_hold(t, 16 * t, 4);
}

static void ml_alloc(unsigned tid, unsigned k)
{
	uint32_t f;
	int rc = bl_alloc(&S.ctx[tid], k, &f);
	if (rc != BUDDY_OK) {
		const struct ml_cfg *cfg = mc_cfg();
		MC_ASSERT(rc == BUDDY_ENOMEM);
		if (cfg->window && tid == 0)
			mc_fail("false ENOMEM: a frame was free at every "
				"instant");
		return;
	}
	for (uint32_t x = f; x < f + (1u << k); x++) {
		if (S.owner[x] != 0)
			mc_fail("B2: frame %u to thread %u, held by %u", x, tid,
				S.owner[x] - 1);
		S.owner[x] = tid + 1;
	}
	MC_ASSERT(S.nheld[tid] < ML_HELD);
	S.held[tid][S.nheld[tid]++] = (struct ml_block){ f, k };
}

static void ml_free_oldest(unsigned tid)
{
	if (S.nheld[tid] == 0)
		return;
	struct ml_block b = S.held[tid][0];
	memmove(&S.held[tid][0], &S.held[tid][1], --S.nheld[tid] * sizeof(b));
	for (uint32_t x = b.f; x < b.f + (1u << b.k); x++)
		S.owner[x] = 0;
	int rc = bl_free(&S.ctx[tid], b.f, b.k);
	if (rc != BUDDY_OK)
		mc_fail("thread %u: free of its block %u refused: %d", tid, b.f,
			rc);
}

static void ml_thread(unsigned tid)
{
	const struct ml_cfg *cfg = mc_cfg();
	for (const char *p = cfg->script[tid]; p != NULL && *p; p++) {
		if (*p == 'f')
			ml_free_oldest(tid);
		else if (*p == 'r')
			bl_release(&S.ctx[tid]);
		else if (*p == 'c')
			(void)bl_reclaim_all(&S.ctx[tid]);
		else
			ml_alloc(tid, (unsigned)(*p - '0'));
	}
}

static uint64_t ml_sum(enum bl_ctr i)
{
	uint64_t n = 0;
	for (unsigned t = 0; t < MC_MAX_THREADS; t++)
		/* Relaxed: every thread has ended. */
		n += lf_load_u64(&S.ctx[t].ctr[i], LF_RELAXED);
	return n;
}

static void ml_check(void)
{
	uint32_t u;
	int b = bl_zone_check(&S.z, &u);
	if (b != 0)
		mc_fail("B%d of the lower level broken at unit %u", b, u);
	char ev[8], *p = ev;
	if (ml_sum(BL_DROPPED))
		*p++ = 'd';
	if (ml_sum(BL_LISTED))
		*p++ = 'l';
	if (ml_sum(BL_TAKEN))
		*p++ = 't';
	if (ml_sum(BL_STOLEN))
		*p++ = 's';
	*p = 0;
	mc_cover_add(&ml_cover, ev);
	for (unsigned t = 0; t < MC_MAX_THREADS; t++)
		while (S.nheld[t] > 0)
			ml_free_oldest(t);
	for (unsigned t = 0; t < MC_MAX_THREADS; t++)
		bl_release(&S.ctx[t]);
	b = bl_zone_check(&S.z, &u);
	if (b != 0)
		mc_fail("B%d broken at unit %u after the frees", b, u);
	for (u = 0; u < S.n; u++)
		/* Relaxed: every thread has ended. */
		if (lf_load_u32(&S.avail[u], LF_RELAXED) != 1)
			mc_fail("unit %u not back at the source: %016llx", u,
				(unsigned long long)lf_load_u64(&S.word[u],
								LF_RELAXED));
}

static bool ml_report(void)
{
	const struct ml_cfg *cfg = mc_cfg();
	return mc_cover_report(&ml_cover, cfg->need);
}

#define ML_TEST(id, nm, desc, nt, b, d, r, ...)                                \
	static const struct ml_cfg id##_cfg = { __VA_ARGS__ };                 \
	static const struct mc_test id = { MC_TEST_COMMON(nm, desc, nt, b, d,  \
							  r),                  \
					   .setup = ml_setup,                  \
					   .thread = ml_thread,                \
					   .check = ml_check,                  \
					   .report = ml_report,                \
					   .cfg = &id##_cfg };

/*
 * The listing race: thread 0 frees into the full unreserved unit 0 whose
 * stale entry thread 1 pops (and drops, or reserves if it sees the free);
 * nothing else touches unit 0, so a unit lost by the race stays lost.
 */
ML_TEST(ml_list, "buddy.lower_list", "a free vs the popper of a stale entry", 2,
	3, 3, 20000, .script = { "f", "0" }, .need = "dlt")
/*
 * Reservations: both threads allocate, free each other's unit's frames,
 * release and reclaim, a third steals.
 */
ML_TEST(ml_res, "buddy.lower_res", "reservations, release, reclaim, steal", 3,
	2, 3, 20000, .script = { "f1r", "f2c", "40" }, .need = "lt")

/*
 * Exact ENOMEM: memory that moves from a place the failing pass has not
 * looked at yet (unit 1, listed by thread 1's free after the pass popped
 * the empty stacks) while the last frame of a place it looks at later
 * (thread 1's reservation) is taken: the free's section breaks the
 * pass's window, and thread 0 retries and finds unit 1.
 */
ML_TEST(ml_enomem, "buddy.lower_enomem", "exact ENOMEM across the places", 2, 3,
	3, 20000, .script = { "0", "f0" }, .need = "l", .window = true)

/*
 * Lines: thread 0 takes the whole zone as its line and works in it;
 * thread 1, finding the source empty, steals from the line and reclaims
 * its empty units (thread 0's names of them go stale: it must move on or
 * fail exactly); thread 2 releases and reserves again.
 */
ML_TEST(ml_line, "buddy.lower_line", "a line of units: steal, reclaim, stale",
	3, 2, 3, 20000, .script = { "0f4", "0c", "r3" }, .need = "ts",
	.lines = true)

/*
 * Up and down again: a free that empties a listed unit (up, word 0)
 * against the popper of its entry, the unit taken down again and listed
 * by a release (ml_setup_up()): B3 at the end, every frame once.
 */
ML_TEST(ml_up, "buddy.lower_up", "a listed unit goes up, comes down, relisted",
	2, 3, 3, 20000, .script = { "f4r", "4" }, .need = "dlt", .up = true)

/*
 * The fullest of the popped entries (bl_pop(), design.md 2.7
 * "Placement"): the entry pushed back in a chain with its pstk kept, a
 * free into it meanwhile, and a second popper (ml_setup_pick()).
 */
ML_TEST(ml_pick, "buddy.lower_pick", "the fullest popped, the rest pushed back",
	2, 3, 3, 20000, .script = { "0", "f0" }, .pick = true)

const struct mc_test *const mc_tests_buddy_lower[] = {
	&ml_list, &ml_res, &ml_enomem, &ml_line, &ml_up, &ml_pick, NULL
};
