/*
 * mc_buddy_units.c: version 3 over units under the model checker: the
 * lower level (buddy/buddy_lower.c) with the core (buddy/buddy_core.c) as
 * its source, both built at BUDDY_CORE_SHIFT 5 into an executable of
 * their own (mc_run_units: the buddy sources cannot be linked at two
 * shifts into one). A zone of 2 units (one order-6 block) unless a
 * configuration asks for more (up to 8: a line), each thread one CPU
 * (its core context and its lower context).
 *
 * A configuration may run a script in setup (thread 1's CPU, nothing
 * scheduled; then a second one on thread 2's CPU) before the threads'
 * scripts:
 *   0-4  buddy_alloc of that order, the lower level's (its per-CPU path
 *        inline, then bl_alloc_slow(): a unit comes down when no
 *        reservation, partial stack or other reservation serves it), held
 *   5-6  buddy_alloc of that order (the core), held
 *   f    free the oldest block the thread holds (buddy_free: below order
 *        5 bl_free_cas() in its section; a unit whose last frame is freed
 *        goes up and merges at the core)
 *   l    free the newest block the thread holds (as f)
 *   r    bl_release of the thread's reservation
 *   k    buddy_cpu_drain (the reservation given up but one unit with
 *        every frame free, kept: bl_drain())
 *   8    buddy_alloc of order 8 (the core: a zone of one line whole)
 *   d    buddy_zone_drain_all (reclaims every empty reserved unit, then
 *        coalesces the core)
 *   a    buddy_alloc_at of the configuration's frame and order, held
 *   b    buddy_alloc_below of the configuration's order and limit, held
 *   A    buddy_alloc_at of the configuration's second frame and order
 *   R    buddy_alloc_run of the configuration's length, held as a run;
 *        with run_at set, the thread's blocks in [run_at, run_at +
 *        run_n) become one run instead (blocks allocated one by one)
 *   F    buddy_free_run of the oldest run the thread holds (dropped
 *        from its blocks whatever the result: the check looks at it)
 *   x    buddy_free of frame x_frame, order x_order, which the thread does not
 *        hold: a racing double free of a piece of another's run
 *   z    forget the thread's newest block: it stays allocated, held by
 *        nobody, the block of script 'y' (docs/v3-status.md item 37)
 *   y    buddy_free of the forgotten block (its result kept per thread:
 *        with caches on, a free into the CPU's block cache)
 *   w    buddy_free of the newest block the thread holds, which a late
 *        free_run may have freed already (cfg reuse: EDOUBLE allowed)
 * Every execution checks:
 *   - B2 at every allocation: nobody holds a frame handed out (an owner
 *     per frame, released just before the free is called);
 *   - with exact set, no ENOMEM for an allocation below order 5: the
 *     configuration keeps a unit free at the core or below at every
 *     instant (the lower level must look at the core's stacks, its
 *     spare slots and its in-flight transits: buddy_unit_has());
 *   - with at_free set, no EBUSY from alloc_at: its range is free at
 *     every instant of the call (docs/v3-status.md item 12);
 *   - with below_exact set, no ENOMEM from alloc_below: a block of its
 *     order is free below its limit at every instant;
 *   - with x_frame set, of a free_run and a racing double free of its
 *     last piece exactly one succeeds, and a free_run that fails
 *     changed nothing (its core piece still allocated, whole);
 *   - with exact_up set, no ENOMEM for an allocation of order >= 5 that
 *     started after the word of thread 1's first unit went to 0 (the
 *     unit is free from that CAS on: in transit up, then at the core);
 *   - with exact5 set, no ENOMEM at all at order >= 5: the configuration
 *     leaves a whole unit free at every instant (reserved below with
 *     every frame free counts as free);
 *   - with exact_all set, no ENOMEM at any order for a call during which
 *     no frame was held at any instant: none held when it started, no
 *     other allocation in flight then, and none started before it
 *     failed (a unit some context keeps is free memory);
 *   - with drain_only set, the end's drain is buddy_zone_drain_all()
 *     alone, no bl_release() first: what contexts keep must be taken
 *     back by it;
 *   - with claims set, no ENOMEM for thread 0 unless the other threads'
 *     claims filled the zone at some instant of its call (a thread
 *     claims a block's frames before its allocation and gives the claim
 *     up after its free has returned, so that the claims cover every
 *     frame held; every allocation of such a configuration is of thread
 *     0's order, so that claims below the zone's size leave a block of
 *     that order free at every instant);
 *   - with reuse set, the block at x_frame (x_order) is freed as often
 *     as it was allocated: once in setup, then once more for each 'a'
 *     after setup, against its frees by 'x', 'F' (the run's first piece)
 *     and 'w' (a late free_run that frees a block taken again since must
 *     leave that block's next free refused: docs/v3-status.md item 46);
 *   - with y_one set, of the threads' frees of the forgotten block ('y')
 *     exactly one succeeds (two racing frees of one block: the cached
 *     mask's fetch_or refuses one); with y_refused set, every 'y' after
 *     setup is refused (a second free of a block that is cached or free
 *     in its word at every instant of the call: EDOUBLE);
 *   - buddy_zone_check at the end (both levels: B1 across them, a LOWER
 *     unit's word nonzero and well formed and every other unit's 0; the
 *     core's B1-B7; the lower level's B3 and B4);
 *   - then everything freed, every reservation released and the zone
 *     drained: fully coalesced (B6 of both levels), every frame free at
 *     the core, every unit word 0 (nothing lost on the way up).
 */
#include <stdio.h>
#include <string.h>

#include "buddy.h"
#include "buddy_i.h"
#include "mc.h"
#include "mc_tests.h"

_Static_assert(BUDDY_CORE_SHIFT == 5, "built over units");

#define MU_UNITS 2      /* the zone's units unless a configuration says */
#define MU_MAX_UNITS 16 /* two lines (BL_LINE) */
#define MU_MAX_NF (MU_MAX_UNITS << BUDDY_CORE_SHIFT)
#define MU_HELD 8
#define MU_META 32768
#define MU_EDGE_LO 8ull /* cfg edge: the region's frames */
#define MU_EDGE_HI 56ull

struct mu_cfg {
	const char *script[MC_MAX_THREADS];
	const char *setup;  /* run by thread 1's CPU in setup */
	const char *setup2; /* then by thread 2's CPU (its blocks held) */
	bool exact;         /* no ENOMEM below order 5 */
	bool stale;         /* a stale core entry on thread 1's first unit */
	/*
	 * No ENOMEM at order >= 5 for an allocation that starts after the
	 * word of thread 1's first unit (a lower block of the setup) went
	 * to 0: the unit is free from that CAS on (in transit up, then at
	 * the core), so the configuration must have no other taker of
	 * order >= 5 memory or of units.
	 */
	bool exact_up;
	/*
	 * No ENOMEM at all at order >= 5: the configuration's holdings
	 * leave a whole unit free at every instant (at the core, in
	 * transit, or reserved below with every frame free).
	 */
	bool exact5;
	/*
	 * No ENOMEM at all for a call that overlapped no holding of a frame
	 * (cfg keep: the whole zone is free but what contexts keep).
	 */
	bool exact_all;
	bool drain_only; /* the end: buddy_zone_drain_all() alone */
	bool claims;     /* no ENOMEM for thread 0 below full claims */
	unsigned units;  /* the zone's units (MU_UNITS if 0) */
	/*
	 * Edge units (docs/design.md 2.7, "The word"): the region is
	 * frames [8, 56), so both units are edge units (frames 8-31 and
	 * 32-55 of the zone's), lower for ever; at the end each must be
	 * lower again with its region's frames free and unreserved, no
	 * unit taken from or given to the core.
	 */
	bool edge;
	/*
	 * docs/v3-status.md item 38 (per-CPU block caches): every 'x' must
	 * be refused with EDOUBLE (nobody holds the block while it runs);
	 * or, x_twice, of every 'x' exactly one succeeds (a block held by
	 * setup, freed by two threads at once: the rest EDOUBLE), the block
	 * dropped from its holder's list.
	 */
	bool x_refused, x_twice;
	const char *need; /* events every search must cover */
	/* Script 'a': alloc_at of frame at_frame, order at_order. */
	unsigned at_frame, at_order;
	bool at_free; /* its range free at every instant: no EBUSY */
	/* Script 'b': alloc_below of below_order, limit below_limit frames. */
	unsigned below_order, below_limit;
	bool below_exact; /* a block fits at every instant: no ENOMEM */
	/*
	 * No ENOMEM from an alloc_below that starts with frame 0 free (it
	 * stays free or goes to another alloc_below, which then succeeded),
	 * and a failing one enters one section of its own at most: its
	 * first pass's over the partial stacks (docs/v3-status.md item 17).
	 */
	bool below_found;
	/*
	 * below_found at a core order (>= 5): the sections a failing call
	 * may enter (0: one, the lower level's first pass), and the frames
	 * whose core words must all be FREE heads at the call's start for
	 * it to count as started with a block free (below_found2: a second
	 * one, so that one other call cannot take them both).
	 */
	unsigned below_sections, below_found2;
	/*
	 * Script 'b' as a plain buddy_alloc of below_order (no limit): its
	 * below_found checks the same (docs/v3-status.md item 23).
	 */
	bool below_plain;
	unsigned at2_frame, at2_order; /* script 'A' */
	unsigned run_n;                /* script 'R': the run's length */
	unsigned run_at;  /* script 'R': the run of held blocks there */
	unsigned x_frame; /* script 'x': the frame freed twice (0: none) */
	unsigned x_order; /* script 'x': its order */
	bool y_one;       /* of the threads' 'y', exactly one succeeds */
	/*
	 * Every CPU's block cache off (docs/v3-status.md item 37): a
	 * configuration whose subject is a free into the word (a unit going
	 * up by its last frame's free).
	 */
	bool nocache;
	bool y_refused; /* every thread's 'y' refused */
	/*
	 * 'x' frees the first piece of thread 1's run behind its back, 'a'
	 * takes it again and 'w' frees it: the piece's frees must match its
	 * allocations (docs/v3-status.md item 46).
	 */
	bool reuse;
	/*
	 * The CPUs' busy words (in-flight sections) may be read stale by a
	 * plain load (mc.c, "Stale loads"): a failing pass's look at them
	 * hoisted above its relaxed loads since their last write, as
	 * AArch64 and POWER allow; an acquire load between forbids it
	 * (docs/v3-status.md item 46).
	 */
	bool stale_busy;
	/*
	 * Script 'x' releases x_frame's frames (the harness's owners) before
	 * its free, not after it succeeded: a thread's 'a' may take the block
	 * between the free and its return (docs/v3-status.md item 51).
	 */
	bool x_early;
	bool nocache0; /* CPU 0's block cache off (its frees into the word) */
	bool nocache1; /* CPU 1's block cache off (setup's too) */
	/*
	 * y_one with the block's frames taken again in another shape: a 'y'
	 * may also be refused with EORDER (frame 0 an allocated head of
	 * another order).
	 */
	bool y_reshaped;
};

struct mu_block {
	uint64_t a;
	unsigned k;
	uint64_t n; /* a run of n frames (script 'R'), or 0: a block */
};

static struct {
	_Alignas(64) unsigned char meta[MU_META];
	struct buddy_zone *z;
	struct mu_block held[MC_MAX_THREADS][MU_HELD];
	unsigned nheld[MC_MAX_THREADS];
	unsigned owner[MU_MAX_NF];
	uint32_t up;          /* exact_up: thread 1's first unit */
	uint32_t units;       /* the zone's units */
	int run_rc, x_rc;     /* scripts 'F' and 'x': their results */
	unsigned x_ok, x_bad; /* x_refused, x_twice: 'x' results counted */
	struct mu_block run;  /* script 'F': the run it freed */
	uint64_t claim[MC_MAX_THREADS]; /* cfg claims: frames claimed */
	bool in_call, full;             /* thread 0's call; claims full */
	bool free_in_call; /* a free by another inside thread 0's call */
	/*
	 * exact_all: frames held by the scripts, allocations started and
	 * in flight (the harness's own counts: its code between two atomic
	 * steps runs alone).
	 */
	uint64_t nheld_frames, starts;
	unsigned flying;
	struct mu_block forgot; /* script 'z': the block of script 'y' */
	int y_rc[MC_MAX_THREADS];
	bool y_ran[MC_MAX_THREADS];
	bool in_setup;
	unsigned at_ok; /* cfg reuse: 'a' after setup that succeeded */
	int w_rc;       /* script 'w': its (last) result */
	bool w_ran;
	unsigned w_ok; /* script 'w': frees that succeeded, every thread */
	bool run_ran;  /* script 'F' ran */
} S;

static const char *const mu_events[] = { "unit down",
					 "unit up",
					 "line down",
					 "core allocation",
					 "edge unit released by a drain",
					 "free_run refused",
					 "a free inside thread 0's call" };
static struct mc_cover mu_cover = { .codes = "dulcefw", .names = mu_events };
static bool mu_line, mu_core;

/* cfg claims: have the other threads' claims filled the zone? */
static bool mu_claims_full(void)
{
	uint64_t sum = 0;
	for (unsigned t = 1; t < MC_MAX_THREADS; t++)
		sum += S.claim[t];
	return sum >= (uint64_t)S.units << BUDDY_CORE_SHIFT;
}

/* cfg claims: thread t claims (d > 0) or gives up (d < 0) frames. */
static void mu_claim(unsigned t, int64_t d)
{
	if (!((const struct mu_cfg *)mc_cfg())->claims)
		return;
	S.claim[t] += (uint64_t)d;
	if (S.in_call && t != 0 && mu_claims_full())
		S.full = true;
}

static void mu_alloc(unsigned t, unsigned k)
{
	const struct mu_cfg *cfg = mc_cfg();
	struct buddy_cpu *c = buddy_zone_cpu(S.z, t);
	uint64_t a = 0;
	int rc;
	bool up = false;
	/*
	 * Every order through buddy_alloc(): below a unit it runs the lower
	 * level's per-CPU path inline (buddy_cache.c), then bl_alloc_slow().
	 */
	if (k >= BUDDY_CORE_SHIFT) {
		/* Relaxed: the harness's look (the CAS to 0 came before). */
		up = cfg->exact_up && lf_load_u64(&S.z->lower.word[BU_W(S.up)],
						  LF_RELAXED) == BU_CORE;
	}
	/* exact_all: nothing held nor being taken when it starts. */
	bool idle = S.nheld_frames == 0 && S.flying == 0;
	uint64_t starts = ++S.starts;
	mu_claim(t, (int64_t)1 << k);
	if (t == 0) {
		S.in_call = true;
		S.full = mu_claims_full();
	}
	S.flying++;
	rc = buddy_alloc(c, k, &a);
	S.flying--;
	if (t == 0)
		S.in_call = false;
	if (k >= BUDDY_CORE_SHIFT)
		mu_core |= rc == BUDDY_OK;
	if (rc != BUDDY_OK) {
		MC_ASSERT(rc == BUDDY_ENOMEM);
		mu_claim(t, -((int64_t)1 << k));
		if (cfg->claims && t == 0 && !S.full)
			mc_fail("false ENOMEM: thread 0, order %u, the others' "
				"claims below the zone at every instant",
				k);
		if (cfg->exact && k < BUDDY_CORE_SHIFT)
			mc_fail("false ENOMEM: thread %u, order %u, a unit "
				"free at every instant",
				t, k);
		if (up)
			mc_fail("false ENOMEM: thread %u, order %u, started "
				"after unit %u's word went to 0 (free since)",
				t, k, S.up);
		if (cfg->exact5 && k >= BUDDY_CORE_SHIFT)
			mc_fail("false ENOMEM: thread %u, order %u, a whole "
				"unit free at every instant",
				t, k);
		if (cfg->exact_all && idle && S.starts == starts)
			mc_fail("false ENOMEM: thread %u, order %u, no frame "
				"held at any instant of the call",
				t, k);
		return;
	}
	S.nheld_frames += 1u << k;
	uint64_t p = a >> BUDDY_FRAME_SHIFT;
	MC_ASSERT(p + (1u << k) <= (S.units << BUDDY_CORE_SHIFT) &&
		  !(p & ((1u << k) - 1)));
	for (uint64_t y = p; y < p + (1u << k); y++) {
		if (S.owner[y] != 0)
			mc_fail("B2: frame %u to thread %u, held by %u",
				(unsigned)y, t, S.owner[y] - 1);
		S.owner[y] = t + 1;
	}
	MC_ASSERT(S.nheld[t] < MU_HELD);
	S.held[t][S.nheld[t]++] = (struct mu_block){ a, k };
}

/* Scripts 'a' and 'b' (version 3's constrained calls below a unit). */
/*
 * Is frame x free at the core, inside a FREE block (its head x or one
 * below it)? The harness's look (relaxed) at the state words.
 */
static bool mu_core_free(uint32_t x)
{
	for (unsigned j = BUDDY_CORE_SHIFT; j <= BUDDY_MAX_ORDER; j++) {
		uint32_t h = x & ~((1u << j) - 1);
		uint16_t s = lf_load_u16(buddy_st(S.z, h), LF_RELAXED);
		if (bst_kind(s) == BK_FREE && bst_order(s) >= j)
			return true;
		if (h == 0)
			break;
	}
	return false;
}

static void mu_place(unsigned t, char op)
{
	const struct mu_cfg *cfg = mc_cfg();
	struct buddy_cpu *c = buddy_zone_cpu(S.z, t);
	uint64_t a = (uint64_t)(op == 'A' ? cfg->at2_frame : cfg->at_frame)
		     << BUDDY_FRAME_SHIFT;
	uint64_t limit = (uint64_t)cfg->below_limit << BUDDY_FRAME_SHIFT;
	unsigned k = op == 'a'   ? cfg->at_order
		     : op == 'A' ? cfg->at2_order
				 : cfg->below_order;
	/*
	 * below_found: the harness's looks at unit 0's word and at our own
	 * busy word (sections entered), only there: elsewhere they would be
	 * scheduling points of their own. Relaxed: looks.
	 */
	bool look = cfg->below_found && op == 'b', found = false;
	uint32_t b0 = 0;
	if (look && k < BUDDY_CORE_SHIFT)
		found = lf_load_u64(&S.z->lower.word[BU_W(0)], LF_RELAXED) &
			BU_FREE0;
	if (look && k >= BUDDY_CORE_SHIFT)
		found = mu_core_free(0) && mu_core_free(cfg->below_found2);
	if (look)
		b0 = lf_load_u32(&c->busy, LF_RELAXED);
	int rc = op != 'b'          ? buddy_alloc_at(c, a, k)
		 : cfg->below_plain ? buddy_alloc(c, k, &a)
				    : buddy_alloc_below(c, k, limit, &a);
	if (look && rc == BUDDY_ENOMEM) {
		uint32_t sect = (lf_load_u32(&c->busy, LF_RELAXED) - b0) >>
				(BUDDY_BUSY_BITS + 1);
		if (found)
			mc_fail("false ENOMEM: thread %u, alloc_below order "
				"%u limit %u, started with frame 0 free",
				t, k, cfg->below_limit);
		if (sect > (cfg->below_sections ? cfg->below_sections : 1))
			mc_fail("thread %u: a failing alloc_below entered %u "
				"sections (its passes after the first must "
				"only look)",
				t, sect);
	}
	/* reuse: an allocation of x_frame's block is script 'a''s. */
	S.at_ok += cfg->reuse && !S.in_setup && op == 'a' && rc == BUDDY_OK;
	if (op == 'A')
		op = 'a';
	if (rc == BUDDY_EBUSY && op == 'a' && cfg->at_free)
		mc_fail("false EBUSY: thread %u, alloc_at frame %u order %u, "
			"free at every instant",
			t, cfg->at_frame, k);
	if (rc == BUDDY_ENOMEM && op == 'b' && cfg->below_exact)
		mc_fail("false ENOMEM: thread %u, alloc_below order %u limit "
			"%u, a block free below it at every instant",
			t, k, cfg->below_limit);
	if (rc != BUDDY_OK)
		return;
	uint64_t p = a >> BUDDY_FRAME_SHIFT;
	MC_ASSERT(op == 'a' || cfg->below_plain ||
		  p + (1u << k) <= cfg->below_limit);
	for (uint64_t y = p; y < p + (1u << k); y++) {
		if (S.owner[y] != 0)
			mc_fail("B2: frame %u to thread %u, held by %u",
				(unsigned)y, t, S.owner[y] - 1);
		S.owner[y] = t + 1;
	}
	MC_ASSERT(S.nheld[t] < MU_HELD);
	S.held[t][S.nheld[t]++] = (struct mu_block){ a, k };
}

/* Script 'R': a run of cfg->run_n frames, held. */
static void mu_run_alloc(unsigned t)
{
	const struct mu_cfg *cfg = mc_cfg();
	uint64_t a, n = cfg->run_n;
	if (cfg->run_at != 0) {
		a = (uint64_t)cfg->run_at << BUDDY_FRAME_SHIFT;
		for (unsigned i = 0; i < S.nheld[t];) {
			uint64_t p = S.held[t][i].a >> BUDDY_FRAME_SHIFT;
			if (p < cfg->run_at || p >= cfg->run_at + n) {
				i++;
				continue;
			}
			S.held[t][i] = S.held[t][--S.nheld[t]];
		}
		S.held[t][S.nheld[t]++] = (struct mu_block){ a, 0, n };
		return;
	}
	int rc = buddy_alloc_run(buddy_zone_cpu(S.z, t), n, &a);
	MC_ASSERT(rc == BUDDY_OK || rc == BUDDY_ENOMEM);
	if (rc != BUDDY_OK)
		return;
	uint64_t p = a >> BUDDY_FRAME_SHIFT;
	MC_ASSERT(p + n <= (uint64_t)S.units << BUDDY_CORE_SHIFT);
	for (uint64_t y = p; y < p + n; y++) {
		if (S.owner[y] != 0)
			mc_fail("B2: frame %u to thread %u, held by %u",
				(unsigned)y, t, S.owner[y] - 1);
		S.owner[y] = t + 1;
	}
	MC_ASSERT(S.nheld[t] < MU_HELD);
	S.held[t][S.nheld[t]++] = (struct mu_block){ a, 0, n };
}

/*
 * Script 'F': free_run of the thread's oldest run; its result
 * and the run kept for mu_check_run(), which cleans up after a failure.
 */
static void mu_run_free(unsigned t)
{
	unsigned i = 0;
	while (i < S.nheld[t] && S.held[t][i].n == 0)
		i++;
	MC_ASSERT(i < S.nheld[t]);
	S.run = S.held[t][i];
	memmove(&S.held[t][i], &S.held[t][i + 1],
		(--S.nheld[t] - i) * sizeof(S.run));
	uint64_t p = S.run.a >> BUDDY_FRAME_SHIFT;
	for (uint64_t y = p; y < p + S.run.n; y++)
		S.owner[y] = 0;
	S.run_rc = buddy_free_run(buddy_zone_cpu(S.z, t), S.run.a, S.run.n);
	S.run_ran = true;
}

/* Script 'x': a racing double free of frame x_frame (order x_order). */
static void mu_free_twice(unsigned t)
{
	const struct mu_cfg *cfg = mc_cfg();
	uint64_t a = (uint64_t)cfg->x_frame << BUDDY_FRAME_SHIFT;
	/*
	 * x_early: the frames released before the call (another thread's
	 * 'a' may take the block between its free and our return).
	 */
	for (uint64_t y = cfg->x_frame;
	     cfg->x_early && y < cfg->x_frame + (1u << cfg->x_order); y++)
		S.owner[y] = 0;
	S.x_rc = buddy_free(buddy_zone_cpu(S.z, t), a, cfg->x_order);
	S.x_ok += S.x_rc == BUDDY_OK;
	/* reuse: a free that succeeded left the frames to 'a'. */
	for (uint64_t y = cfg->x_frame; cfg->reuse && S.x_rc == BUDDY_OK &&
					y < cfg->x_frame + (1u << cfg->x_order);
	     y++)
		S.owner[y] = 0;
	S.x_bad += S.x_rc != BUDDY_OK && S.x_rc != BUDDY_EDOUBLE;
	if (cfg->x_refused && S.x_rc != BUDDY_EDOUBLE)
		mc_fail("thread %u: a free of frame %u order %u, held by "
			"nobody (in a cache): %d, not EDOUBLE",
			t, cfg->x_frame, cfg->x_order, S.x_rc);
}

/* x_twice: exactly one 'x' succeeded; the block leaves its holder. */
static void mu_check_twice(void)
{
	const struct mu_cfg *cfg = mc_cfg();
	if (!cfg->x_twice)
		return;
	if (S.x_ok != 1 || S.x_bad != 0)
		mc_fail("two frees of frame %u order %u: %u succeeded, %u "
			"refused with another code than EDOUBLE",
			cfg->x_frame, cfg->x_order, S.x_ok, S.x_bad);
	uint64_t a = (uint64_t)cfg->x_frame << BUDDY_FRAME_SHIFT;
	for (unsigned t = 0; t < MC_MAX_THREADS; t++)
		for (unsigned i = 0; i < S.nheld[t]; i++)
			if (S.held[t][i].a == a && S.held[t][i].n == 0) {
				for (uint64_t y = cfg->x_frame;
				     y < cfg->x_frame + (1u << cfg->x_order);
				     y++)
					S.owner[y] = 0;
				memmove(&S.held[t][i], &S.held[t][i + 1],
					(--S.nheld[t] - i) *
						sizeof(S.held[t][0]));
				S.nheld_frames -= 1u << cfg->x_order;
				return;
			}
}

/*
 * With x_frame: of the free_run and the double free of one of its
 * pieces, exactly one succeeds; a free_run that failed changed nothing
 * (its first piece, unless it is the one freed twice, still allocated at
 * its order; no frame of it handed out meanwhile), and its pieces but
 * the one freed twice are freed here for the final check.
 */
static void mu_check_run(void)
{
	const struct mu_cfg *cfg = mc_cfg();
	if (cfg->x_frame == 0 || cfg->x_refused || cfg->x_twice)
		return;
	if (!cfg->reuse && (S.run_rc == BUDDY_OK) == (S.x_rc == BUDDY_OK))
		mc_fail("free_run %d and the double free of frame %u %d: not "
			"exactly one succeeded",
			S.run_rc, cfg->x_frame, S.x_rc);
	if (S.run_rc == BUDDY_OK)
		return;
	uint64_t p0 = S.run.a >> BUDDY_FRAME_SHIFT;
	for (uint64_t y = p0; y < p0 + S.run.n; y++)
		if (S.owner[y] != 0 && y != cfg->x_frame)
			mc_fail("free_run failed (%d) but its frame %u was "
				"handed out meanwhile (to thread %u)",
				S.run_rc, (unsigned)y, S.owner[y] - 1);
	unsigned kind = 0, o = 0;
	MC_ASSERT(buddy_zone_frame(S.z, S.run.a, &kind, &o) == BUDDY_OK);
	unsigned k0 = 63u - (unsigned)__builtin_clzll(S.run.n);
	if (p0 != cfg->x_frame && (kind != BUDDY_FRAME_ALLOC || o != k0))
		mc_fail("free_run failed (%d) but changed its first piece: "
			"kind %u order %u",
			S.run_rc, kind, o);
	uint64_t end = S.run.a + (S.run.n << BUDDY_FRAME_SHIFT);
	for (uint64_t a = S.run.a, off = 0; a < end; a += off) {
		unsigned k = 63u - (unsigned)__builtin_clzll((end - a) >>
							     BUDDY_FRAME_SHIFT);
		off = (uint64_t)BUDDY_FRAME_SIZE << k;
		if (a >> BUDDY_FRAME_SHIFT == cfg->x_frame)
			continue; /* freed by the double free */
		if (buddy_free(buddy_zone_cpu(S.z, 0), a, k) != BUDDY_OK)
			mc_fail("free_run failed and piece %llx order %u is "
				"not allocated",
				(unsigned long long)a, k);
	}
}

/* Free the thread's held block i (scripts f and l). */
static void mu_free_held(unsigned t, unsigned i)
{
	if (S.nheld[t] <= i)
		return;
	struct mu_block b = S.held[t][i];
	memmove(&S.held[t][i], &S.held[t][i + 1],
		(--S.nheld[t] - i) * sizeof(b));
	uint64_t p = b.a >> BUDDY_FRAME_SHIFT;
	for (uint64_t y = p; y < p + (b.n ? b.n : 1u << b.k); y++)
		S.owner[y] = 0;
	struct buddy_cpu *c = buddy_zone_cpu(S.z, t);
	int rc;
	bool during = S.in_call && t != 0;
	/* Below a unit, buddy_free() runs bl_free_cas() in its section. */
	if (b.n != 0)
		rc = buddy_free_run(c, b.a, b.n);
	else
		rc = buddy_free(c, b.a, b.k);
	if (rc != BUDDY_OK)
		mc_fail("thread %u: free of its block %llx order %u: %d", t,
			(unsigned long long)b.a, b.k, rc);
	S.free_in_call |= during && S.in_call;
	if (b.n == 0) {
		/* after the free returned: the claims; exact_all's count */
		mu_claim(t, -((int64_t)1 << b.k));
		S.nheld_frames -= 1u << b.k;
	}
}

/* Script 'w': the newest block held, maybe freed by a late free_run. */
static void mu_free_late(unsigned t)
{
	const struct mu_cfg *cfg = mc_cfg();
	if (S.nheld[t] == 0)
		return;
	struct mu_block b = S.held[t][--S.nheld[t]];
	MC_ASSERT(b.n == 0);
	uint64_t p = b.a >> BUDDY_FRAME_SHIFT;
	for (uint64_t y = p; y < p + (1u << b.k); y++)
		S.owner[y] = 0;
	S.w_rc = buddy_free(buddy_zone_cpu(S.z, t), b.a, b.k);
	S.w_ran = true;
	S.w_ok += S.w_rc == BUDDY_OK;
	/*
	 * x_early: a racing free may have freed our block as a late free of
	 * another's, whose frames then went into a larger block: ETAIL.
	 */
	bool tail = cfg->x_early &&
		    (S.w_rc == BUDDY_ETAIL || S.w_rc == BUDDY_EORDER);
	if (S.w_rc != BUDDY_OK && S.w_rc != BUDDY_EDOUBLE && !tail)
		mc_fail("thread %u: free of its block %llx order %u: %d", t,
			(unsigned long long)b.a, b.k, S.w_rc);
}

/*
 * reuse: the run's first piece (x_frame) freed once for each of its
 * allocations: setup's, then each 'a' after setup.
 */
static void mu_check_reuse(void)
{
	const struct mu_cfg *cfg = mc_cfg();
	if (!cfg->reuse)
		return;
	unsigned frees = (S.x_rc == BUDDY_OK) +
			 (S.run_ran && S.run_rc == BUDDY_OK) + S.w_ok;
	if (frees != 1 + S.at_ok)
		mc_fail("frame %u order %u: allocated %u times, freed %u times "
			"(x %d, free_run %d, w %d)",
			cfg->x_frame, cfg->x_order, 1 + S.at_ok, frees, S.x_rc,
			S.run_rc, S.w_ran ? S.w_rc : 99);
}

static void mu_free_oldest(unsigned t)
{
	mu_free_held(t, 0);
}

/* Script 'z': the thread's newest block allocated, held by nobody. */
static void mu_forget(unsigned t)
{
	MC_ASSERT(S.nheld[t] > 0);
	S.forgot = S.held[t][--S.nheld[t]];
	MC_ASSERT(S.forgot.n == 0);
	uint64_t p = S.forgot.a >> BUDDY_FRAME_SHIFT;
	for (uint64_t y = p; y < p + (1u << S.forgot.k); y++)
		S.owner[y] = 0;
	mu_claim(t, -((int64_t)1 << S.forgot.k));
	S.nheld_frames -= 1u << S.forgot.k;
}

/* Script 'y': a free of the forgotten block (a racing or second free). */
static void mu_free_forgot(unsigned t)
{
	int rc = buddy_free(buddy_zone_cpu(S.z, t), S.forgot.a, S.forgot.k);
	if (S.in_setup) {
		MC_ASSERT(rc == BUDDY_OK);
		return;
	}
	S.y_rc[t] = rc;
	S.y_ran[t] = true;
}

static void mu_run(unsigned t, const char *script)
{
	struct buddy_cpu *c = buddy_zone_cpu(S.z, t);
	for (const char *p = script; p != NULL && *p; p++) {
		if (*p == 'f')
			mu_free_oldest(t);
		else if (*p == 'l')
			mu_free_held(t, S.nheld[t] - 1);
		else if (*p == 'r')
			bl_release(buddy_lower_ctx(c));
		else if (*p == 'k')
			buddy_cpu_drain(c);
		else if (*p == 'd')
			buddy_zone_drain_all(c);
		else if (*p == 'a' || *p == 'A' || *p == 'b')
			mu_place(t, *p);
		else if (*p == 'R')
			mu_run_alloc(t);
		else if (*p == 'F')
			mu_run_free(t);
		else if (*p == 'x')
			mu_free_twice(t);
		else if (*p == 'z')
			mu_forget(t);
		else if (*p == 'y')
			mu_free_forgot(t);
		else if (*p == 'w')
			mu_free_late(t);
		else
			mu_alloc(t, (unsigned)(*p - '0'));
	}
}

/* mc_test.stale: the CPUs' busy words where the configuration says. */
static unsigned mu_stale_loc(const volatile void *addr)
{
	const struct mu_cfg *cfg = mc_cfg();
	if (!cfg->stale_busy || S.z == NULL)
		return 0;
	for (unsigned t = 0; t < MC_MAX_THREADS; t++)
		if (addr == &buddy_zone_cpu(S.z, t)->busy.v)
			return 4;
	return 0;
}

static void mu_setup(void)
{
	const struct mu_cfg *cfg = mc_cfg();
	memset(&S, 0, sizeof(S));
	mu_line = mu_core = false;
	S.units = cfg->units != 0 ? cfg->units : MU_UNITS;
	MC_ASSERT(S.units <= MU_MAX_UNITS);
	struct buddy_region rg = {
		0, (uint64_t)S.units << (BUDDY_CORE_SHIFT + BUDDY_FRAME_SHIFT)
	};
	if (cfg->edge)
		rg = (struct buddy_region){ MU_EDGE_LO << BUDDY_FRAME_SHIFT,
					    (MU_EDGE_HI - MU_EDGE_LO)
						    << BUDDY_FRAME_SHIFT };
	size_t need = buddy_meta_size(&rg, 1, MC_MAX_THREADS);
	if (need == 0 || need > MU_META)
		mc_fail("setup: metadata %zu bytes", need);
	if (buddy_zone_init(&S.z, S.meta, MU_META, &rg, 1, MC_MAX_THREADS) !=
	    BUDDY_OK)
		mc_fail("setup: buddy_zone_init");
	for (unsigned t = 0; t < MC_MAX_THREADS && cfg->nocache; t++)
		buddy_cpu_cache_enable(buddy_zone_cpu(S.z, t), false);
	if (cfg->nocache0)
		buddy_cpu_cache_enable(buddy_zone_cpu(S.z, 0), false);
	if (cfg->nocache1)
		buddy_cpu_cache_enable(buddy_zone_cpu(S.z, 1), false);
	S.in_setup = true;
	mu_run(1, cfg->setup);
	mu_run(2, cfg->setup2);
	S.in_setup = false;
	if (cfg->exact_up) {
		MC_ASSERT(S.nheld[1] > 0 && S.held[1][0].k < BUDDY_CORE_SHIFT);
		S.up = buddy_addr_idx(&S.z->rgn[0], S.held[1][0].a) >>
		       BUDDY_CORE_SHIFT;
	}
	if (cfg->stale) {
		/*
		 * The unit of thread 1's first block (LOWER) gets a stale
		 * entry on the core's stack of order 5 (stk 6, its link
		 * pushed): as if it had been listed free there and then
		 * claimed without a pop (a merge, alloc_at). B3 holds.
		 */
		const struct buddy_rgn *r = &S.z->rgn[0];
		uint32_t x = buddy_addr_idx(r, S.held[1][0].a) &
			     ~(BUDDY_CORE_FRAMES - 1);
		uint16_t st = lf_load_u16(buddy_st(S.z, x), LF_RELAXED);
		MC_ASSERT(bst_kind(st) == BK_LOWER && bst_stk(st) == 0);
		lf_init_u16(buddy_st(S.z, x),
			    bst_with_stk(st, BUDDY_CORE_SHIFT + 1));
		MC_ASSERT(lf_stack_push(&S.z->stacks[BUDDY_CORE_SHIFT].s,
					S.z->link, buddy_cx(x)) == 0);
	}
}

static void mu_thread(unsigned tid)
{
	const struct mu_cfg *cfg = mc_cfg();
	mu_run(tid, cfg->script[tid]);
}

static uint64_t mu_sum(enum bl_ctr i)
{
	uint64_t n = 0;
	for (unsigned t = 0; t < MC_MAX_THREADS; t++)
		/* Relaxed: every thread has ended. */
		n += lf_load_u64(&S.z->lower.ctx[t].ctr[i], LF_RELAXED);
	return n;
}

/* Unit u's word when every frame of it is at rest: 0, or an edge's. */
static uint64_t mu_rest(uint32_t u)
{
	const struct mu_cfg *cfg = mc_cfg();
	uint64_t b = (uint64_t)u << BUDDY_CORE_SHIFT;
	if (!cfg->edge)
		return BU_CORE;
	uint64_t lo = MU_EDGE_LO > b ? MU_EDGE_LO - b : 0;
	uint64_t hi = MU_EDGE_HI < b + BU_FRAMES ? MU_EDGE_HI - b : BU_FRAMES;
	return bu_make((unsigned)lo, (unsigned)hi, false);
}

/* cfg edge: thread 0's reservation names an edge unit a drain released. */
static bool mu_edge_released(void)
{
	const struct mu_cfg *cfg = mc_cfg();
	/* Relaxed: every thread has ended. */
	uint32_t u = lf_load_u32(&S.z->lower.ctx[0].res, LF_RELAXED);
	return cfg->edge && u != BL_NONE &&
	       !bu_reserved(lf_load_u64(&S.z->lower.word[BU_W(u)], LF_RELAXED));
}

static void mu_check(void)
{
	const struct mu_cfg *cfg = mc_cfg();
	uint64_t fr;
	int b = buddy_zone_check(S.z, false, &fr);
	if (b != 0)
		mc_fail("B%d broken at frame %llu", b, (unsigned long long)fr);
	mu_check_twice(); /* item 38: before the frees below */
	char ev[8], *p = ev;
	if (mu_sum(BL_TAKEN))
		*p++ = 'd';
	if (mu_sum(BL_GIVEN))
		*p++ = 'u';
	if (mu_sum(BL_TAKEN) >= BL_LINE)
		*p++ = 'l';
	if (mu_core)
		*p++ = 'c';
	if (mu_edge_released())
		*p++ = 'e';
	if (cfg->x_frame != 0 && !cfg->x_refused && !cfg->x_twice &&
	    S.run_rc != BUDDY_OK)
		*p++ = 'f';
	if (S.free_in_call)
		*p++ = 'w';
	*p = 0;
	mc_cover_add(&mu_cover, ev);
	mu_check_reuse();
	mu_check_run();
	unsigned yok = 0, yran = 0;
	for (unsigned t = 0; t < MC_MAX_THREADS; t++) {
		yran += S.y_ran[t];
		yok += S.y_ran[t] && S.y_rc[t] == BUDDY_OK;
		if (cfg->y_one && S.y_ran[t] && S.y_rc[t] != BUDDY_OK &&
		    S.y_rc[t] != BUDDY_EDOUBLE &&
		    !(cfg->y_reshaped && S.y_rc[t] == BUDDY_EORDER))
			mc_fail("thread %u: free of the forgotten block: %d", t,
				S.y_rc[t]);
	}
	if (cfg->y_one && yok != 1)
		mc_fail("%u of %u racing frees of one block succeeded", yok,
			yran);
	if (cfg->y_refused && yok != 0)
		mc_fail("a second free of a cached (or drained) block "
			"succeeded");
	for (unsigned t = 0; t < MC_MAX_THREADS; t++)
		while (S.nheld[t] > 0)
			mu_free_oldest(t);
	for (unsigned t = 0; t < MC_MAX_THREADS && !cfg->drain_only; t++)
		bl_release(buddy_lower_ctx(buddy_zone_cpu(S.z, t)));
	buddy_zone_drain_all(buddy_zone_cpu(S.z, 0));
	b = buddy_zone_check(S.z, true, &fr);
	if (b != 0)
		mc_fail("B%d broken at frame %llu after the frees and drain", b,
			(unsigned long long)fr);
	struct buddy_stats st;
	buddy_zone_stats(S.z, &st);
	if (st.free_frames != st.total_frames || st.cached_frames != 0)
		mc_fail("%llu frames free (%llu cached) of %llu at the end",
			(unsigned long long)st.free_frames,
			(unsigned long long)st.cached_frames,
			(unsigned long long)st.total_frames);
	for (uint32_t u = 0; u < S.units; u++)
		/* Relaxed: every thread has ended. */
		if (lf_load_u64(&S.z->lower.word[BU_W(u)], LF_RELAXED) !=
		    mu_rest(u))
			mc_fail("unit %u: word %016llx at the end", u,
				(unsigned long long)lf_load_u64(
					&S.z->lower.word[BU_W(u)], LF_RELAXED));
	if (cfg->edge && (mu_sum(BL_TAKEN) || mu_sum(BL_GIVEN)))
		mc_fail("an edge unit went to the core or came from it");
}

static bool mu_report(void)
{
	const struct mu_cfg *cfg = mc_cfg();
	return mc_cover_report(&mu_cover, cfg->need);
}

/* The per-context counters: one writer each, read at the end. */
static bool mu_local(const volatile void *addr, enum lf_atomic_op op)
{
	(void)op;
	uintptr_t a = (uintptr_t)addr;
	for (unsigned i = 0; i < MC_MAX_THREADS; i++) {
		const struct buddy_cpu *c = buddy_zone_cpu(S.z, i);
		const struct bl_ctx *l = &S.z->lower.ctx[i];
		if ((a >= (uintptr_t)c->ctr &&
		     a < (uintptr_t)c->ctr + sizeof(c->ctr)) ||
		    (a >= (uintptr_t)l->ctr &&
		     a < (uintptr_t)l->ctr + sizeof(l->ctr)))
			return true;
	}
	return false;
}

#define MU_TEST(id, nm, desc, nt, b, d, r, ...)                                \
	static const struct mu_cfg id##_cfg = { __VA_ARGS__ };                 \
	static const struct mc_test id = { MC_TEST_COMMON(nm, desc, nt, b, d,  \
							  r),                  \
					   .setup = mu_setup,                  \
					   .thread = mu_thread,                \
					   .check = mu_check,                  \
					   .report = mu_report,                \
					   .local = mu_local,                  \
					   .cfg = &id##_cfg };
/* The same with the CPUs' busy words readable stale (cfg stale_busy). */
#define MU_TEST_STALE(id, nm, desc, nt, b, d, r, ...)                          \
	static const struct mu_cfg id##_cfg = { __VA_ARGS__,                   \
						.stale_busy = true };          \
	static const struct mc_test id = { MC_TEST_COMMON(nm, desc, nt, b, d,  \
							  r),                  \
					   .setup = mu_setup,                  \
					   .thread = mu_thread,                \
					   .check = mu_check,                  \
					   .report = mu_report,                \
					   .local = mu_local,                  \
					   .stale = mu_stale_loc,              \
					   .cfg = &id##_cfg };

/*
 * docs/v3-status.md item 38: per-CPU block caches over the unit words,
 * attacked at the contract (the contexts' caches are on: the default).
 * Version 3 without caches passes them as it is; a cache must not weaken
 * them.
 *
 * buddy.units_adv_df: a second free of a block in a cache. In setup
 * thread 1 takes frame 5 (alloc_at, order 0) and frees it (into CPU 1's
 * cache, where caches exist). Thread 0 frees frame 5 again while thread 1
 * drains its cache and thread 2 drains every cache (a remote drain): the
 * free must be refused with EDOUBLE at every interleaving (item 28's
 * mask race: a drain between the free's check and its mark).
 */
MU_TEST(mu_adv_df, "buddy.units_adv_df",
	"a second free of a cached block vs its drains", 3, 2, 3, 20000,
	.script = { "x", "k", "d" }, .setup = "af", .at_frame = 5,
	.at_order = 0, .x_frame = 5, .x_order = 0, .x_refused = true)

/* The same with the cache's owner draining alone (no remote drain). */
MU_TEST(mu_adv_df_own, "buddy.units_adv_df_own",
	"a second free of a cached block vs its owner's drain", 2, 2, 3, 20000,
	.script = { "x", "k" }, .setup = "af", .at_frame = 5, .at_order = 0,
	.x_frame = 5, .x_order = 0, .x_refused = true)

/*
 * buddy.units_adv_df_refill: a free of a block nobody ever held, beside
 * one allocation's block (a refill may hold it in a cache). In setup
 * thread 1 takes frame 0 by alloc_at; thread 1 allocates one frame (its
 * refill may take more of the unit) and drains its cache while thread 0
 * frees frame 3, which nobody holds whatever thread 1 got (frames 1-2 are
 * what its allocation may take first): EDOUBLE at every interleaving
 * unless thread 1's allocation took frame 3 itself, which a single
 * allocation after frame 0 does not (the unit's lowest free frame first).
 */
MU_TEST(mu_adv_df_refill, "buddy.units_adv_df_refill",
	"a free of a never-held block beside a refill", 2, 2, 3, 20000,
	.script = { "x", "0k" }, .setup = "a", .at_frame = 0, .at_order = 0,
	.x_frame = 3, .x_order = 0, .x_refused = true)

/*
 * buddy.units_adv_free2: two frees of one held block at once. In setup
 * thread 1 takes frames 4-7 (alloc_at, order 2); threads 0 and 1 both
 * free it: exactly one succeeds, the other gets EDOUBLE.
 */
MU_TEST(mu_adv_free2, "buddy.units_adv_free2", "two frees of one block racing",
	2, 2, 3, 20000, .script = { "x", "x" }, .setup = "a", .at_frame = 4,
	.at_order = 2, .x_frame = 4, .x_order = 2, .x_twice = true)

/*
 * buddy.units_adv_enomem: the only free frame in another CPU's cache.
 * A zone of 2 units: in setup thread 1 takes a whole unit (order 5),
 * thread 2 the other one in blocks of orders 4, 3, 2, 1, 0, 0 and frees
 * its last frame (into CPU 2's cache, where caches exist). Thread 0
 * allocates a frame while thread 2 takes a frame and frees it again (the
 * zone full meanwhile: its claim) and thread 1 drains every cache: the
 * claims (every frame held claimed) leave a frame free at every instant
 * but that one, so thread 0 must not fail (exact ENOMEM over the caches:
 * issue 14's windows, the frame moving between a cache and its word
 * while thread 0 looks).
 */
MU_TEST(mu_adv_enomem, "buddy.units_adv_enomem",
	"the only free frame in another CPU's cache", 3, 1, 3, 20000,
	.script = { "0", "d", "0l" }, .setup = "5", .setup2 = "432100l",
	.claims = true, .need = "w")

/*
 * Down and up racing the core: thread 0 takes a unit down (the core's
 * order-6 block split, its other half published) and frees its frame, so
 * the unit goes up and merges; thread 1 allocates the other unit at the
 * core and frees it, merging too; thread 2 drains (reclaim, coalesce).
 * Of the two merges one must end with the order-6 block whole (B6 after
 * the drain), and no frame is handed out twice.
 */
MU_TEST(mu_updown, "buddy.units_updown", "a unit down and up vs core merges", 3,
	2, 3, 20000, .script = { "0f", "5f", "d" }, .need = "duc")

/*
 * The lower level must find a unit that is free only in another
 * context's spare slot, or in transit in a merge: thread 1 held both
 * units and freed one in setup (into its spare slot: the stacks are
 * empty); now it frees the other (a merge claims the spare, the order-6
 * block is published) while thread 0 allocates one frame below: a unit
 * is free at the core at every instant, so thread 0 must not fail.
 */
MU_TEST(mu_enomem, "buddy.units_enomem", "no false ENOMEM over the core", 2, 3,
	3, 20000, .script = { "0", "f" }, .setup = "55f", .exact = true,
	.need = "d")

/*
 * Reservations over the core: thread 0 takes a unit down and releases
 * it with free frames (listed), then frees its frame; thread 1 allocates
 * order 1 (from the listed unit, a partial stack's pop, or a unit of
 * its own), frees it and drains (reclaims): the unit goes up by
 * whichever free, release or reclaim empties it last.
 */
MU_TEST(mu_list, "buddy.units_list", "a listed unit over the core, up", 2, 2, 3,
	20000, .script = { "0rf", "1fd" }, .need = "du")

/*
 * Up against a stale core entry: thread 1's unit (LOWER, reserved) has a
 * stale entry on the core's order-5 stack; thread 1 releases it and
 * frees its frame, so the unit goes up (LOWER -> BUSY, then the merging
 * free) while thread 0's core allocation pops the stale entry and drops
 * it (a CAS on the same core word, clearing stk): the up transition must
 * be a CAS, or stk comes back with no stack holding the link (B3).
 */
MU_TEST(mu_stale, "buddy.units_stale", "up vs the popper of a stale core entry",
	2, 3, 3, 20000, .script = { "5f", "rf" }, .setup = "0", .stale = true,
	.nocache = true, .need = "duc")

/*
 * Exact ENOMEM at order >= 5 over a unit going up: thread 1 holds frame
 * 0 of unit 0 (lower, released: listed) and unit 1 at the core; it frees
 * the frame, so unit 0's word goes to 0 and the unit goes up (LOWER ->
 * BUSY, the merging free at the core). Thread 0 allocates order 5 at the
 * core: if it starts after that CAS to 0, the unit is free at every
 * instant of its call (in transit, then on the core's stack), so it must
 * not fail: the free must be inside an in-flight section the core's
 * window sees from before its CAS until the unit is at the core.
 */
MU_TEST(mu_enomem_up, "buddy.units_enomem_up",
	"no false order-5 ENOMEM while a unit goes up", 2, 2, 3, 20000,
	.script = { "5", "f" }, .setup = "0r5", .exact_up = true, .need = "duc")

/*
 * Exact ENOMEM below order 5 while memory appears at the core: thread 1
 * holds unit A at the core and unit B reserved below with every frame
 * but the last held (orders 4-0); it frees A at the core, then takes B's
 * last frame from its reservation (no section: an allocation only takes
 * memory away). Thread 0 allocates one frame: a frame is free at every
 * instant (B's last until A is free, A after), so it must not fail: a
 * free at the core must break the lower level's window as a lower
 * free does (its look at the core came before A appeared there, its
 * look at the reservations after B's last frame was gone).
 */
MU_TEST(mu_enomem_core, "buddy.units_enomem_core",
	"no false small ENOMEM while memory appears at the core", 2, 3, 3,
	20000, .script = { "0", "f0" }, .setup = "543210", .exact = true,
	.need = "d")

/*
 * Exact ENOMEM at order >= 5 with reservations: a zone of one line (8
 * units). Thread 1 holds frame 0 of unit 0 (its setup took the whole
 * zone down as a line and released it: units 1-7 went up and merged,
 * unit 0 is listed) and frees it: unit 0 goes up, and its merge at the
 * core claims the free units 1, 2-3 and 4-7 one after the other and
 * publishes the order-8 block (every free unit in its hands meanwhile:
 * a merge from buddy_unit_give() is eager); thread 2
 * allocates one frame below (the whole block taken down as its line, one
 * frame of it allocated: seven units reserved with every frame free);
 * thread 0 allocates order 5 at the core. At most two units hold a frame
 * at any instant, so a whole unit is free at every instant, and thread 0
 * must not fail: the core's failing loop must take the reservations'
 * empty units back inside each quiet window, not only at its second
 * attempt (a merge may hold the units then, a line take them after).
 */
/*
 * Since docs/v3-status.md item 16 a unit comes down alone (a line only
 * beside another context's reservation, taken whole and free: never in
 * a zone of one line), so thread 2 takes one unit and the history above
 * (seven empty reserved units) is no longer reached here; the
 * configuration keeps the single-unit histories of the same race.
 */
MU_TEST(mu_enomem_line, "buddy.units_enomem_line",
	"no false order-5 ENOMEM over empty reserved units", 3, 2, 3, 20000,
	.script = { "5", "f", "0" }, .setup = "0r", .exact5 = true, .units = 8,
	.need = "dc")

/*
 * Edge units (cfg edge: both units partial, never at the core). In setup
 * thread 1 takes an order-4 block of each (each unit reserved in turn,
 * then released by a drain: listed at class 3, its other 8 region frames
 * free; a release alone would leave it in thread 1's hand-over ring,
 * docs/v3-status.md item 44, where thread 0 would not pop it).
 * Thread 1 frees both blocks, so that every region frame of a unit is
 * free while its entry is listed (a whole unit would go up here: an edge
 * unit must stay lower, listed); thread 0 takes an order-3 block
 * (popping a unit's entry against those frees: its reservation is all
 * free until its allocation's CAS); thread 2 drains, releasing a
 * reserved edge unit whose region frames are all free (a CAS racing the
 * owner's allocation: a release by check and store loses it, and the
 * block's free at the end fails). B2 at every allocation, every free
 * accepted; B1 of edge units, B3, B4 at the end; then every edge unit
 * lower, unreserved, its region frames free, none taken or given.
 */
MU_TEST(mu_edge, "buddy.units_edge",
	"edge units: emptied, popped, released by a drain", 3, 2, 3, 20000,
	.script = { "3", "ff", "d" }, .setup = "4k4k", .edge = true,
	.need = "e")

/*
 * alloc_at below a unit while its unit moves between the levels: thread 1
 * holds frame 0 of unit 0 (lower, released: listed) and unit 1 at the
 * core, and frees the frame (unit 0's word goes to 0, the unit goes up
 * and merges); thread 2 allocates one frame (unit 0 popped from its
 * partial stack and reserved, or taken down again from the core: frame
 * 0 or 1); thread 0 asks alloc_at for frame 5, free at every instant
 * (lower, then at the core, then lower again): it must not say EBUSY
 * whichever level it finds the unit at, or in between (its word 0, the
 * core's walk then finding the unit LOWER again: look at the word
 * again), and must bring the unit down itself when it is at the core.
 */
MU_TEST(mu_at_move, "buddy.units_at_move",
	"alloc_at below a unit vs the unit going up and down", 3, 2, 3, 20000,
	.script = { "a", "f", "0" }, .setup = "0r5", .at_frame = 5,
	.at_order = 0, .at_free = true, .exact = true, .need = "du")

/*
 * alloc_below below a unit while its unit moves: the limit is 8 frames
 * (inside unit 0), order 2; thread 1 holds frame 0 of unit 0 (listed)
 * and unit 1, and frees the frame (unit 0 up); thread 2 allocates one
 * frame (unit 0 reserved from the partial stack, or down again; setup
 * drains rather than releases, so that unit 0 is listed on the shared
 * stack, not kept in thread 1's hand-over ring, item 44): frames
 * 4-7 are free at every instant (in a listed unit, at the core, in a
 * reserved one), so thread 0's alloc_below(2, 8 frames) must not fail:
 * its pass must look at every place, the core with the limit moved by a
 * unit less the block, and memory moved meanwhile must break its window.
 */
MU_TEST(mu_below_move, "buddy.units_below_move",
	"alloc_below inside a unit vs the unit going up and down", 3, 2, 3,
	20000, .script = { "b", "f", "0" }, .setup = "0k5", .below_order = 2,
	.below_limit = 8, .below_exact = true, .exact = true, .need = "du")

/*
 * free_run that fails must change nothing: thread 1 holds a run of 33
 * frames (unit 0 at the core, order 5, then frame 32 in unit 1, lower,
 * the rest of unit 1 free and listed) and frees it while thread 0 frees
 * frame 32 (order 0) behind its back, a racing double free. Exactly one
 * of the two frees of frame 32 succeeds; if it is thread 0's, the
 * free_run fails with unit 0 still allocated at order 5 (its claim given
 * back), not freed: the unit's CAS is the commit point, after the core
 * pieces' claims and before their merges.
 */
MU_TEST(mu_free_run, "buddy.units_free_run",
	"free_run vs a racing double free of its last piece", 2, 3, 3, 20000,
	.script = { "x", "F" }, .setup = "R", .run_n = 33, .x_frame = 32,
	.need = "duf")

/*
 * The same below a unit, across two units' words: thread 1 holds frames
 * 30-31 (order 1, unit 0) and frame 32 (order 0, unit 1), allocated one
 * by one (alloc_at brings both units down), and frees them as one run of
 * 3 frames: the CAS on unit 0's word first (its word goes to 0: every
 * frame free, unreserved), then unit 1's; thread 0 double-frees frame
 * 32. Exactly one of the two frees of frame 32 succeeds; a free_run
 * that fails has given frames 30-31 back (unit 0's word stored back,
 * relisted), not left them free or sent unit 0 up.
 */
MU_TEST(mu_free_run2, "buddy.units_free_run2",
	"free_run across two units vs a racing double free", 2, 3, 3, 20000,
	.script = { "x", "F" }, .setup = "aAR", .at_frame = 30, .at_order = 1,
	.at2_frame = 32, .at2_order = 0, .run_n = 3, .run_at = 30,
	.x_frame = 32, .need = "duf")

/*
 * What a drain keeps (docs/design.md 2.7, "Contexts without a cache"):
 * a zone of one line (8 units, one order-8 block). In setup thread 1
 * takes a frame (one unit comes down: the core's best fit, docs/design.md
 * 2.7 "Placement"), frees it and drains: it keeps unit 0, reserved with
 * every frame free, and the core's other units stay merged.
 * Thread 1 then takes a frame again and frees it and drains (a pair on
 * its kept unit: a free inside a section); thread 2 drains the zone
 * (buddy_zone_drain_all() takes the kept unit back: up and merged);
 * thread 0 allocates the whole zone (order 8). Unless thread 1 held its
 * frame at some instant of thread 0's call, the zone is whole at every
 * instant but for the kept unit, and thread 0 must not fail: the core's
 * failing loop must find what a context keeps in its quiet windows. At
 * the end buddy_zone_drain_all() alone (no release first) must leave the
 * zone fully coalesced, every word 0 (B6).
 */
MU_TEST(mu_keep, "buddy.units_keep",
	"a unit kept by a drain: exact ENOMEM of the whole zone, coalesced", 3,
	1, 3, 20000, .script = { "8", "0fk", "d" }, .setup = "0fk", .units = 8,
	.exact_all = true, .drain_only = true, .need = "dc")

/*
 * Exact ENOMEM below a unit over two reservations, with the per-CPU
 * free's section (buddy_cache.c: a free into a unit that stays reserved,
 * whose section takes one load for its two stores, docs/v3-status.md item
 * 18). In setup thread 1 fills unit 0 with order-4 blocks and releases it
 * (full: unlisted), takes one block of unit 1 (its reservation), frees
 * the first block (unit 0 into its hand-over ring) and drains (unit 1
 * released; the ring emptied onto the shared stack of class 4: both units
 * listed, one free order-4 block each, docs/v3-status.md items 44, 48
 * and 51), then takes an order-4 block again: its pop of the two takes
 * unit 1 (pushed last; equally full, so bl_pop()'s pick keeps the top
 * entry), so unit 1 is reserved by thread 1 and full, and unit 0 stays
 * listed; then thread 2's CPU takes unit 0's block (unit 0 popped and
 * reserved) and frees it into its reservation. Thread 2 takes it back (the
 * hint: no section); thread 1 frees its newest block into its reservation (a
 * unit that stays reserved: the fast path); thread 0 allocates order 4:
 * no partial stack, nothing at the core, then the reservations of
 * threads 1 and 2 in turn. If its look at thread 1's comes before that
 * free and its look at thread 2's after thread 2 took its block back, it
 * found nothing while a block was free at every instant (the claims say
 * so): the free's section must break its window.
 */
MU_TEST(mu_enomem_rsv, "buddy.units_enomem_rsv",
	"no false small ENOMEM while a free goes into a reservation", 3, 2, 3,
	20000, .script = { "4", "l", "4" }, .setup = "44r4fk4", .setup2 = "4l",
	.claims = true, .nocache = true, .need = "w")

/*
 * A crossing run whose first unit keeps a frame of its own (docs/v3-status.md
 * item 17): thread 1 holds frame 0 of unit 0 (its reservation), frames 30-31
 * (order 1) and frame 32 (unit 1), allocated one by one, and frees 30-32 as
 * one run; thread 0 double-frees frame 32, then asks alloc_at for frames
 * 30-31. Exactly one of the two frees of frame 32 succeeds, and a free_run
 * that fails changed nothing: frames 30-31 were never free, so thread 0's
 * alloc_at must not get them. The code before item 17 freed unit 0's pieces
 * first and undid that by a CAS that failed once alloc_at had taken them.
 */
MU_TEST(mu_free_run_held, "buddy.units_free_run_held",
	"free_run across two units, first unit kept, vs a double free", 2, 3, 3,
	20000, .script = { "xa", "F" }, .setup = "0aAR", .at_frame = 30,
	.at_order = 1, .at2_frame = 32, .at2_order = 0, .run_n = 3,
	.run_at = 30, .x_frame = 32, .need = "df")

/*
 * A racing double free of a claimed piece: the same run of 30-32, thread
 * 0 double-frees its first piece (frames 30-31, order 1, in unit 0, the
 * part bl_free_run_claim() claims before unit 1's CAS commits). Exactly
 * one of the two frees of frames 30-31 succeeds: a free that finds them
 * claimed says EDOUBLE, and a claim that finds them free fails the run
 * with nothing changed (a check of both words before a commit on unit 1,
 * without the claim, lets both succeed).
 */
MU_TEST(mu_free_run_claimed, "buddy.units_free_run_claimed",
	"free_run across two units vs a double free of its claimed piece", 2, 3,
	3, 20000, .script = { "x", "F" }, .setup = "0aAR", .at_frame = 30,
	.at_order = 1, .at2_frame = 32, .at2_order = 0, .run_n = 3,
	.run_at = 30, .x_frame = 30, .x_order = 1, .nocache = true,
	.need = "df")

/*
 * The claim needed (docs/v3-status.md item 46): the same run of 30-32
 * held by thread 1 (frame 0 kept, so unit 0 stays lower), caches off.
 * Thread 0 frees the run's first piece (30-31) behind its back, takes it
 * again by alloc_at and frees it; thread 1 frees the run. The free_run
 * that checks 30-31 after alloc_at took them again frees thread 0's new
 * block (a late free): thread 0's free of it must then be refused. The
 * run's cached bits, held across its CAS, do not see to it here:
 * alloc_at's CAS, then the free_run's hold (fetch_or), then alloc_at's
 * lazy clear of the stale bits of the frames it took (bl_mask_clear())
 * takes the hold away, and thread 0's free into the word passes the bit;
 * only the claim (code 3 in unit 0's word until the settle) refuses it.
 * Since item 47 the clear takes only bits it saw before its CAS: the hold
 * stays and refuses that free first (the claim's mutant survives).
 */
MU_TEST(mu_free_run_reuse, "buddy.units_free_run_reuse",
	"free_run across two units vs its claimed piece freed and taken again",
	2, 3, 3, 20000, .script = { "xaw", "F" }, .setup = "0aAR",
	.at_frame = 30, .at_order = 1, .at2_frame = 32, .at2_order = 0,
	.run_n = 3, .run_at = 30, .x_frame = 30, .x_order = 1, .nocache = true,
	.reuse = true, .need = "d")

/*
 * The same with caches on (docs/v3-status.md item 47): thread 0's free of
 * its new block goes into its cache. Item 46 found B5 broken here at frame
 * 30: alloc_at's lazy clear took the run's hold, thread 0's cached free
 * set the bit again and the free_run's release took it. Now alloc_at
 * clears only the bits it saw after its read of the word (a hold set
 * after that stays) and the free_run leaves its holds once it has freed.
 */
MU_TEST(mu_free_run_reuse_cache, "buddy.units_free_run_reuse_cache",
	"free_run across two units vs its claimed piece freed, taken again and"
	" cached",
	2, 3, 3, 20000, .script = { "xaw", "F" }, .setup = "0aAR",
	.at_frame = 30, .at_order = 1, .at2_frame = 32, .at2_order = 0,
	.run_n = 3, .run_at = 30, .x_frame = 30, .x_order = 1, .reuse = true,
	.need = "d")

/*
 * A free whose first look is stale (docs/v3-status.md item 51; docs/design.md
 * 2.7, "Bits and the lazy clear"). Thread 1 holds frame 1 (B, order 0) and
 * frame 31 (unit 0 stays lower). Thread 0 frees B (a racing second free);
 * thread 1 frees B (its cache), drains (B free in the word, its bit
 * stale), takes frames 0-1 as one order-1 block (alloc_below limit 2: the
 * other shape; its clear takes B's stale bit), frees it (the bit of frame
 * 0) and drains: B free, its bit clear. Thread 2 takes B (alloc_at) and
 * frees it. Thread 0's look at the word before thread 1's steps, its bit
 * set after them, and thread 2's alloc_at between its bit and its second
 * look: before item 51 the bit went onto the free head, alloc_at's
 * snapshot took it, and thread 0 cached B as a late free of thread 2's
 * block with no bit (B5), thread 2's own free accepted too. B's frees must
 * match its allocations (reuse; 'w' may be refused) and B5 hold.
 */
MU_TEST(mu_stale_look, "buddy.units_stale_look",
	"a cached free's stale look vs its block freed, reshaped, taken", 3, 2,
	3, 20000, .script = { "x", "wkblk", "aw" }, .setup = "Aa",
	.at_frame = 1, .at_order = 0, .at2_frame = 31, .at2_order = 0,
	.below_order = 1, .below_limit = 2, .x_frame = 1, .x_order = 0,
	.reuse = true, .x_early = true, .need = "d")

/*
 * The same with thread 0's cache off: its free into the word holds B's bit
 * across its CAS; thread 2 takes B and caches it between its hold and its
 * CAS (before item 51 the hold, set on the free head, went to alloc_at's
 * snapshot, and the CAS freed the cached block into the word).
 */
MU_TEST(mu_stale_look_word, "buddy.units_stale_look_word",
	"a free into the word's stale look vs its block freed, reshaped, taken",
	3, 2, 3, 20000, .script = { "x", "wkblk", "aw" }, .setup = "Aa",
	.at_frame = 1, .at_order = 0, .at2_frame = 31, .at2_order = 0,
	.below_order = 1, .below_limit = 2, .x_frame = 1, .x_order = 0,
	.reuse = true, .x_early = true, .nocache0 = true, .need = "d")

/*
 * An allocation's snapshot of the mask against the word's ABA
 * (docs/v3-status.md item 52). Caches off, nothing in setup. Thread 0
 * takes a frame (unit 0 comes down as its reservation: frame 0) and
 * frees it; thread 1 takes frame 0 by alloc_at and frees it into the
 * word, whose hold stays on the free head, and the word is back to the
 * value it had (the unit stays reserved). Thread 0's read of the word
 * before thread 1's steps and its CAS after them: with a snapshot of the
 * mask loaded after that read but not compared by the CAS, the hold was
 * not in it, stayed on the block thread 0 took, and thread 0's free of
 * its own block was refused (EDOUBLE). The CAS now compares the mask with
 * the word (bu_cas_word_m()). Mutant buddy-v3-alloc-snapshot-uncompared.
 */
MU_TEST(mu_snapshot_aba, "buddy.units_snapshot_aba",
	"an allocation's mask snapshot vs alloc_at and free of its frame", 2, 3,
	3, 20000, .script = { "0f", "Al" }, .at2_frame = 0, .at2_order = 0,
	.nocache = true)

/*
 * The same through alloc_below (bl_want_cas(): its own CAS loop): thread 0
 * takes its frame by alloc_below (order 0, limit 32).
 */
MU_TEST(mu_snapshot_aba_below, "buddy.units_snapshot_aba_below",
	"alloc_below's mask snapshot vs alloc_at and free of its frame", 2, 3,
	3, 20000, .script = { "bf", "Al" }, .setup = "0", .below_order = 0,
	.below_limit = 32, .at2_frame = 1, .at2_order = 0, .nocache = true)

/*
 * The refill's CAS against the word's ABA (docs/v3-status.md item 54).
 * In setup thread 1 allocates order 3 (unit 0 comes down as its
 * reservation, frames 0-7 its block, its refill caches 8-15, 16-23 and
 * 24-31) and drains (the three blocks freed into the word, their bits and
 * marks stale; the unit, not empty, released). Thread 1 allocates order 3
 * again: its slow path takes unit 0 back (8-15) and its refill takes
 * 16-23 and 24-31 into its cache (one CAS against the word and the mask
 * it loaded, which sets the heads' bits; until item 55 marks on heads 16
 * and 24 by a fetch_or first). Thread 0 takes frames 16-31 by alloc_at
 * (order 4: head 24 of the refill inside it; its lazy clear takes the
 * bits it sees there), frees the block into the word (its cache off: the
 * word back to the value the refill loaded, its hold on frame 16 stale),
 * then frees frames 24-31 (order 3), which nobody holds: EDOUBLE at every
 * interleaving (free in the word, or in thread 1's cache with its bit).
 * With the refill's CAS on the word alone (item 54: the CAS succeeded
 * after the mark of 24 had gone; item 55's refill with the mask written
 * after the word's CAS), a free between the CAS and the cached bits found
 * no bit: a second free accepted, the block in two caches. The CAS
 * compares the mask with the word. Mutant buddy-v3-refill-cas-word-only.
 */
MU_TEST(mu_refill_aba, "buddy.units_refill_aba",
	"a refill's CAS vs alloc_at and free of its blocks' frames", 2, 3, 3,
	20000, .script = { "Alx", "3" }, .setup = "3k", .at2_frame = 16,
	.at2_order = 4, .x_frame = 24, .x_order = 3, .x_refused = true,
	.nocache0 = true)

/*
 * The same with thread 0's cache on: its free of 16-31 goes into its
 * cache and its drain frees it into the word (the bit of frame 16 stale).
 */
MU_TEST(mu_refill_aba_drain, "buddy.units_refill_aba_drain",
	"a refill's CAS vs alloc_at, cached free and drain of its frames", 2, 3,
	3, 20000, .script = { "Alkx", "3" }, .setup = "3k", .at2_frame = 16,
	.at2_order = 4, .x_frame = 24, .x_order = 3, .x_refused = true)

/*
 * The cached mask's version (docs/v3-status.md item 57; docs/design.md
 * 2.7, "The mask's version"): advanced by the clears, not by the frees.
 * In setup thread 1 (its cache off) takes an order-1 block (frames 0-1)
 * and forgets it. Thread 0 frees the block into its cache (the mask, then
 * the word, then an 8-byte CAS of the mask setting bit 0) while thread 1
 * frees it into the word (its hold on bit 0 left stale) and takes frame 0
 * alone by alloc_at (its lazy clear takes bit 0 back): exactly one of the
 * two frees may succeed (thread 0's refused with EDOUBLE, or EORDER once
 * frame 0 is an order-0 head). A clear that did not advance the version would
 * give thread 0's CAS the mask it loaded before thread 1's free: the
 * block cached at order 1 while frame 0 is thread 1's and frame 1 free
 * in the word. Mutant buddy-v3-ver-clear-unbumped.
 */
MU_TEST(mu_ver_clear, "buddy.units_ver_clear",
	"a cached free's look vs a free into the word and alloc_at's clear", 2,
	2, 3, 20000, .script = { "y", "yA" }, .setup = "1z", .at2_frame = 0,
	.at2_order = 0, .y_one = true, .y_reshaped = true, .nocache1 = true)

/*
 * The same with thread 1's cache on: its free goes into its cache (bit 0
 * set), its drain frees the block into the word (the bit stale), then
 * its alloc_at of frame 0 clears it.
 */
MU_TEST(mu_ver_clear_drain, "buddy.units_ver_clear_drain",
	"a cached free's look vs a cached free, drain and alloc_at's clear", 2,
	2, 3, 20000, .script = { "y", "ykA" }, .setup = "1z", .at2_frame = 0,
	.at2_order = 0, .y_one = true, .y_reshaped = true)

/*
 * A stale partial entry's popper against bl_adopt() (the listing race of
 * docs/design.md 2.7, "Listing", for a unit coming down): in setup thread
 * 1 takes unit 0 down (frame 0, reserved), drains (a drain, not a bare
 * release, since the hand-over ring of v3-status item 44 keeps a released
 * unit off the shared stacks: listed at class 4), frees the frame and
 * drains its cache, so the unit goes up with its entry left on
 * partial stack 4, stale (pstk still set). Thread 1 allocates one frame:
 * its pass pops that entry and re-files it (clear pstk, then load the
 * word); thread 0's alloc_at of frame 5 brings unit 0 down again from the
 * core (bl_adopt(): a seq_cst store of the word, then bl_list()'s load of
 * pstk, which may still be the stale entry's). One of the two must see
 * the other: the unit, unreserved with 31 free frames, must end listed
 * or reserved (B4), its link on one stack at most (B3); frame 5 is free
 * at every instant (no EBUSY), and no order-0 allocation may fail.
 */
MU_TEST(mu_adopt_stale, "buddy.units_adopt_stale",
	"bl_adopt() vs the popper of the unit's stale partial entry", 2, 2, 3,
	20000, .script = { "a", "0" }, .setup = "0kfk", .at_frame = 5,
	.at_order = 0, .at_free = true, .exact = true, .need = "du")

/*
 * The same with alloc_below's take (bl_want_take(): a unit from the core
 * below the limit, adopted with the block at its start): thread 0 asks
 * alloc_below for order 2 below frame 32 (unit 0 only: its pass pops the
 * stale entry itself when thread 1 has not, and must find the unit
 * reserved by thread 1 or take it down); thread 1 allocates one frame.
 * Unit 0's frames 4-31 are free at every instant, so alloc_below must
 * not fail; B3 and B4 at the end.
 */
MU_TEST(mu_adopt_stale_below, "buddy.units_adopt_stale_below",
	"alloc_below's bl_adopt() vs a stale partial entry's popper", 2, 2, 3,
	20000, .script = { "b", "0" }, .setup = "0kf", .below_order = 2,
	.below_limit = 32, .below_exact = true, .exact = true, .nocache = true,
	.need = "du")

/*
 * Two failing alloc_belows and a free they must find (docs/v3-status.md
 * item 17): the limit is frame 32 (unit 0), order 0. In setup thread 1
 * fills unit 0 (its reservation: orders 4, 3, 2, 1, 0, 0) and takes
 * frame 32 with alloc_at (unit 1 down, listed at class 4: an entry
 * above the limit on a partial stack, which a pass over the stacks pops
 * and pushes back inside a section). Threads 0 and 2 each ask
 * alloc_below twice while thread 1 frees frames 0-15. An alloc_below
 * that starts with frame 0 free must not fail (16 frames, 4 calls), and
 * one that fails may enter only its first pass's section: a later pass
 * that popped the stacks again would break the other's quiet window
 * each time, and two such contexts could keep each other failing for
 * ever (the core's look is one too: both units are lower, so a pass
 * that asked the core's take would only look at it).
 */
MU_TEST(mu_below_fail2, "buddy.units_below_fail2",
	"two failing alloc_belows vs a free they must find", 3, 2, 3, 20000,
	.script = { "bb", "f", "bb" }, .setup = "432100A", .at2_frame = 32,
	.at2_order = 0, .below_order = 0, .below_limit = 32,
	.below_found = true, .nocache = true, .need = "d")

/*
 * A stale hint (docs/design.md 2.7, "The hint"): a hint names a unit and a
 * block, and the unit can leave the context while the hint stays. In
 * setup thread 1 allocates order 2 and frees it: its order-2 hint names
 * frames 0-3 of its reserved unit, now empty. Thread 1 then allocates
 * order 2 (the hint first); thread 0 drains the zone
 * (buddy_zone_drain_all() takes the empty reserved unit back to the core
 * and merges it); thread 2 allocates order 0, which may take that unit
 * down again as its own reservation (frame 0 its block). Thread 1's hint
 * must serve only by the word's CAS: from the unit while it is still its
 * own or free in thread 2's, never from a unit at the core or over a
 * frame thread 2 holds (B2 at every allocation, the zone whole at the
 * end).
 */
MU_TEST(mu_hint_stale, "buddy.units_hint_stale",
	"a stale hint: its unit up to the core, down for another CPU", 3, 1, 3,
	20000, .script = { "d", "2", "0" }, .setup = "2f", .need = "du")

/*
 * The history of buddy.units_enomem_line under item 16's placement
 * (docs/v3-status.md; design.md 2.7, "Placement"): a zone of two lines
 * (16 units, one order-9 block). In setup thread 1 takes one frame (unit
 * 0 down alone: its reservation, in line 0; units 1, 2-3, 4-7 and 8-15
 * published) and units 2-3 and 4-7 at the core; thread 2's CPU takes
 * unit 1 by alloc_at and frees it (not its last allocation: an eager
 * free, into its own spare slot of order 5; its buddy is lower). Line 1
 * is whole on the core's stack. Thread 2 allocates one frame: its best
 * fit is unit 1, in the line of thread 1's reservation, so it takes the
 * whole free line 1 instead (8 units reserved, one frame allocated, 7
 * empty) and gives unit 1 back, which its order-5 allocation then takes.
 * Thread 1 frees frame 0: unit 0 goes up and its merge claims unit 1 if
 * it is at the core (before thread 2's take: no shared line, one unit).
 * Thread 0 allocates order 5: if its first two passes fall while thread
 * 2's take holds unit 1 and line 1, and its first quiet pass comes after
 * thread 2 named the line, the core holds nothing while seven reserved
 * units are empty. At most 7 units hold a frame at any instant, so a
 * whole unit is free at every instant and thread 0 must not fail: the
 * core's failing loop must take the empty reserved units back inside
 * each quiet window (not only at its second attempt, whose drain came
 * before the line was named).
 */
MU_TEST(mu_enomem_line2, "buddy.units_enomem_line2",
	"no false order-5 ENOMEM over a line taken beside a reservation", 3, 2,
	3, 20000, .script = { "5", "f", "05" }, .setup = "067", .setup2 = "af",
	.at_frame = 32, .at_order = 5, .exact5 = true, .units = 16,
	.need = "dlc")

/*
 * Two failing alloc_belows at the core and the frees they must find
 * (docs/v3-status.md item 21): order 5 below frame 64 (units 0 and 1), a
 * zone of 8 units. In setup thread 1 takes units 0 and 1 (the order-8
 * block split: frames 64-127 on stack 6 and 128-255 on stack 7, both
 * ending past the limit). Threads 0 and 2 each ask alloc_below(5, 64)
 * while thread 1 frees both units. A call that starts with both units
 * free at the core must not fail (the other call takes one at most), and
 * a failing call may enter only its first pass's sections, one for each
 * stack it pops (orders 5-7 here: three at most, four allowed): a later
 * pass that popped stacks 6 and 7 again and pushed them back would break
 * the other's quiet window each time, and two such calls could keep each
 * other failing for ever (buddy_take_global_held() before item 21).
 */
MU_TEST(mu_below_core2, "buddy.units_below_core2",
	"two failing core alloc_belows vs the frees they must find", 3, 1, 3,
	20000, .script = { "b", "ff", "b" }, .setup = "55", .units = 8,
	.below_order = 5, .below_limit = 64, .below_found = true,
	.below_found2 = 32, .below_sections = 4)

/*
 * The core's looking pass must take a block larger than the order asked
 * (docs/v3-status.md item 21): in setup thread 1 takes units 0 and 1 of
 * a zone of 8 and frees unit 1 (free at order 5, in its spare slot; the
 * rest past the limit on stacks 6 and 7). Thread 0 asks alloc_below(5,
 * 64 frames) while thread 1 frees unit 0, whose merge makes one order-8
 * block at frame 0 out of everything. A block that fits is free (or in
 * the merge, in flight) at every instant, so the call must not fail:
 * a first pass that ran while the merge held the units leaves it to the
 * looks, which must take the merged block where it is.
 */
MU_TEST(mu_below_core_merge, "buddy.units_below_core_merge",
	"a looking core alloc_below vs a merge into a larger block", 2, 2, 3,
	20000, .script = { "b", "f" }, .setup = "55l", .units = 8,
	.below_order = 5, .below_limit = 64, .below_exact = true)

/*
 * Two failing plain allocations over free smaller blocks (docs/v3-status.md
 * item 23; the core's loop without a limit, shared by version 2): in setup
 * thread 1 takes units 0 and 1 of a zone of 8 (frames 64-127 free on stack
 * 6, 128-255 on stack 7); threads 0 and 1 each ask buddy_alloc(8), which
 * must fail. A failing call may enter only its one sweep's sections (one a
 * stack it pops: stacks 6 and 7, two): a later pass that swept again would
 * pop and push back both stacks, breaking the other call's quiet window,
 * and two such calls in lockstep could keep each other failing for ever
 * (buddy_take_global_held() before item 23 swept in every quiet pass).
 */
MU_TEST(mu_alloc_fail2, "buddy.units_alloc_fail2",
	"two failing large allocations over free smaller blocks", 2, 2, 3,
	20000, .script = { "b", "b" }, .setup = "55", .units = 8,
	.below_order = 8, .below_plain = true, .below_found = true,
	.below_sections = 2)

/*
 * Version 2's cache configurations (buddy.drain_window, buddy.cache,
 * buddy.drain, buddy.at_cached: mc_buddy.c) over reservations
 * (docs/v3-status.md item 27). Their subject, the per-CPU caches, is
 * gone at shift 5; their question stays: memory moving between the
 * places a failing pass looks at while it looks.
 *
 * buddy.drain_window's: a reservation released into a partial stack and
 * then drained to the core during a small failing pass. In setup thread
 * 1 takes two order-4 blocks (unit 0 down, its reservation, full) and
 * frees the first (16 frames free in its reservation); thread 2's CPU
 * takes unit 1 at the core. Thread 1 releases its reservation (unit 0
 * listed at class 4) and frees its other block (every frame of unit 0
 * free, unreserved: the unit goes up to the core); thread 2 takes a
 * frame (from thread 1's reservation, the partial stack or the core:
 * unit 0 reserved by thread 2 then), frees it and drains the zone (its
 * empty reservation taken back). Thread 0 allocates one frame: its
 * claims (every allocation's frames claimed before the call, given up
 * after the free) leave a frame free at every instant, so it must not
 * fail wherever the release, the free, the pop or the drain moved the
 * memory while it looked.
 */
MU_TEST(mu_drain_window, "buddy.units_drain_window",
	"a reservation released and drained vs a small failing pass", 3, 1, 3,
	20000, .script = { "0", "rf", "0fd" }, .setup = "44f", .setup2 = "5",
	.claims = true, .need = "du")

/*
 * buddy.cache's: a reservation with every frame free must be taken back
 * by a core allocation of another CPU, while its owner releases it and a
 * third CPU drains the zone. In setup thread 1 takes a frame (unit 0
 * down, its reservation), frees it and drains its CPU (buddy_cpu_drain()
 * keeps the empty unit reserved). Thread 1 releases its reservation
 * (unit 0 up to the core, merged); thread 2 drains the zone
 * (buddy_zone_drain_all(): the unit taken back if still reserved);
 * thread 0 allocates the whole zone (order 6). No frame is held at any
 * instant, so it must succeed (exact_all): a reserved empty unit is free
 * memory, and one the release or the drain moves to the core is in
 * flight inside their sections. (A call that may fail at the end, such
 * as an order-0 allocation by a third thread once the zone is taken,
 * reads as a livelock to the checker: after a pass that overlapped
 * another's section it pauses, and its next pass, quiet, only looks or
 * sweeps as its local state says: docs/v3-status.md item 27.)
 */
MU_TEST(mu_cache, "buddy.units_cache",
	"a reserved empty unit released, drained, taken back by the core", 3, 1,
	3, 20000, .script = { "6", "r", "d" }, .setup = "0fk",
	.exact_all = true, .need = "duc")

/*
 * buddy.drain's: frees into a reservation, a drain, a run and a zone
 * drain at once, a zone of 4 units: thread 0 takes a frame, frees it
 * and drains (its unit kept, or given up); thread 1 allocates a
 * run of 40 frames (a whole unit at the core and 8 frames of a unit
 * below) and frees it; thread 2 drains the zone (every empty reserved
 * unit taken back, the core coalesced). B2 at every allocation, both
 * levels' invariants at the end, and the zone whole once drained.
 */
MU_TEST(mu_drain, "buddy.units_drain",
	"reservation frees, drain, a run across levels, zone drain", 3, 2, 3,
	20000, .script = { "0fk", "RF", "d" }, .units = 4, .run_n = 40,
	.need = "du")

/*
 * buddy.at_cached's: alloc_at against another CPU's reservation. In
 * setup thread 1 takes frame 0 and frees it (unit 0 reserved by it, every
 * frame free, frame 0 its hint); thread 1 takes a frame again (frame 0:
 * the hint) and frees it, thread 2 drains the zone (unit 0 taken back to
 * the core if empty, merged) and takes a frame (a unit down again as its
 * reservation); thread 0 asks alloc_at for frame 5, free at every
 * instant (in thread 1's reservation, at the core, in thread 2's): no
 * EBUSY. EBUSY is for a range with a frame allocated; a free frame of a
 * reserved unit is taken by the word's CAS.
 */
MU_TEST(mu_at_rsv, "buddy.units_at_rsv",
	"alloc_at of a free frame of another CPU's reservation", 3, 2, 3, 20000,
	.script = { "a", "0f", "d0" }, .setup = "0f", .at_frame = 5,
	.at_order = 0, .at_free = true, .need = "du")

/*
 * The same at order 5: alloc_at of a whole unit that thread 2 reserves
 * with every frame free (setup2: a frame taken and freed, unit 1 its
 * reservation; thread 1's is unit 0). Thread 2 drains its CPU (the empty
 * unit kept), thread 1 takes and frees a frame of its own unit; thread
 * 0's alloc_at(frame 32, order 5): the range is free at every instant,
 * so no EBUSY: alloc_at must take the reserved empty unit back first.
 */
MU_TEST(mu_at_rsv5, "buddy.units_at_rsv5",
	"alloc_at of a whole unit reserved empty by another CPU", 3, 2, 3,
	20000, .script = { "a", "0f", "k" }, .setup = "0f", .setup2 = "0f",
	.at_frame = 32, .at_order = 5, .at_free = true, .nocache = true,
	.need = "d")

/*
 * docs/v3-status.md item 37: the per-CPU block caches over the unit words.
 * Two racing frees of one block from two CPUs: thread 1 allocated a frame
 * in setup and forgot it (allocated, held by nobody); threads 0 and 1 free
 * it at once, each into its own cache: exactly one succeeds (the cached
 * mask's fetch_or orders them), the other says EDOUBLE and changes
 * nothing; at the end the zone is whole (the block drained once).
 */
MU_TEST(mu_cache_df2, "buddy.units_cache_df2",
	"two racing frees of one block into two CPUs' caches", 2, 2, 3, 20000,
	.script = { "y", "y" }, .setup = "0z", .y_one = true, .need = "d")

/*
 * A second free racing the drain of the cache that holds the block
 * (v3-status items 28, 32, 35): in setup thread 1 allocates a frame,
 * forgets it and frees it into its cache; thread 1 drains its CPU (the
 * grouped CAS frees the block into its word), thread 0 frees the block
 * again at the same time: it is cached or free at every instant, so the
 * free must be refused (the drain never clears the cached bit; a free
 * that set it sees the word change at its second load).
 */
MU_TEST(mu_cache_drain_df, "buddy.units_cache_drain_df",
	"a second free racing the drain of the block's cache", 2, 2, 3, 20000,
	.script = { "y", "k" }, .setup = "0zy", .y_refused = true, .need = "d")

/*
 * A late second free racing the block's drain and its reuse at another
 * order: in setup thread 1 takes a frame (frame 0), forgets it and frees
 * it into its cache; thread 1 drains its cache and takes an order-1
 * block (frames 0-1: the allocation clears the drained block's stale
 * bit), thread 0 frees the order-0 block again: at every instant frame 0
 * is a cached head, free, or the head of thread 1's order-1 block, never
 * an allocated order-0 head, so the free must be refused (its second
 * load of the word after its fetch_or sees the reuse).
 */
MU_TEST(mu_cache_reuse_df, "buddy.units_cache_reuse_df",
	"a late second free racing the drain and a reuse at order 1", 2, 2, 3,
	20000, .script = { "y", "k1" }, .setup = "0zy", .y_refused = true,
	.need = "d")

/*
 * A remote drain racing the owner's own pops and pushes: in setup thread
 * 1 takes a frame and frees it into its cache (with its refill's frames);
 * thread 0 allocates the whole zone (its failing pass drains thread 1's
 * cache under version 2's exclusion: the cache lock, the wait for own)
 * and frees it, while thread 1 takes and frees frames through its cache:
 * B2 at every allocation (no block both drained and popped), both
 * levels' invariants and the zone whole at the end.
 */
MU_TEST(mu_cache_remote, "buddy.units_cache_remote",
	"owner pops and pushes vs a remote drain of its cache", 2, 2, 3, 20000,
	.script = { "6f", "0f0f" }, .setup = "0zy", .need = "d")

/*
 * Exact ENOMEM over another CPU's cache: in setup thread 1 takes a frame
 * (unit 0 down, its refill caches more frames of it) and frees it into
 * its cache; thread 0 allocates the whole zone (order 6) while thread 1
 * drains its own cache: no frame is held at any instant, so it must not
 * fail (its failing pass drains every CPU's cache inside its window).
 */
MU_TEST(mu_cache_enomem, "buddy.units_cache_enomem",
	"the whole zone vs frames only in another CPU's cache", 2, 1, 3, 20000,
	.script = { "6", "k" }, .setup = "0zy", .exact_all = true, .need = "dc")

/*
 * Exact ENOMEM over a drained cache, with the CPUs' busy words readable
 * stale (stale_busy; mc.c, "Stale loads"; docs/v3-status.md item 46).
 * buddy.units_cache_enomem_stale: the only free frame in CPU 2's cache
 * (setup as buddy.units_adv_enomem's); thread 0 allocates a frame while
 * thread 1 drains every cache (buddy_zone_drain_all(): the frame in its
 * hands, inside its section, between the slots and the word). A failing
 * pass that reads CPU 2's count as 0 must then see thread 1's section in
 * its second look at the busy words; a look satisfied before its relaxed
 * loads since thread 1 entered would not, and the count's acquire load
 * (buddy_zone_drain_some(), pairing with the drain's release store) is
 * what forbids that. The claims leave a frame free at every instant.
 * buddy.units_cache_enomem6_stale: buddy.units_cache_enomem's history
 * (the whole zone vs thread 1's drain of its own cache) under the same
 * model. Neither kills buddy-v3-cache-enomem-count-relaxed, exhaustive
 * at DFS bound 2: item 46 says why.
 */
MU_TEST_STALE(mu_cache_enomem_stale, "buddy.units_cache_enomem_stale",
	      "a failing pass vs a remote drain, busy words read stale", 2, 1,
	      3, 20000, .script = { "0", "d" }, .setup = "5",
	      .setup2 = "432100l", .claims = true, .need = "")

MU_TEST_STALE(
	mu_cache_enomem6_stale, "buddy.units_cache_enomem6_stale",
	"the whole zone vs a drain of another CPU's cache, busy read stale", 2,
	1, 3, 20000, .script = { "6", "k" }, .setup = "0zy", .exact_all = true,
	.need = "dc")

/*
 * alloc_at of a cached block: in setup thread 1 takes frame 0 and frees
 * it into its cache (with the frames its refill cached); thread 0 asks
 * alloc_at for frame 0 (draining the caches) while thread 1 drains its
 * own cache and thread 2 the zone's: frame 0 is in a cache, in transit or
 * free at every instant, so no EBUSY (version 2's contract: a cached
 * frame is free to the caller). (An allocation by thread 1 there could
 * take frame 0 once drained: then EBUSY is right.)
 */
MU_TEST(mu_cache_at, "buddy.units_cache_at",
	"alloc_at of a frame in another CPU's cache", 3, 2, 3, 20000,
	.script = { "a", "k", "d" }, .setup = "0zy", .at_frame = 0,
	.at_order = 0, .at_free = true, .need = "d")

/*
 * docs/v3-status.md item 44: the per-CPU hand-over ring (caches off, so
 * that frees reach the words: a unit reopened by a free goes into the
 * freeing CPU's ring). buddy.units_ring_enomem: a zone of 2 units; in
 * setup thread 1 takes one whole (order 5), thread 2 fills the other with
 * blocks of orders 4, 3, 2, 1, 0, 0, drains (the full unit released,
 * named by nothing) and frees its last frame: the unit goes into CPU 2's
 * ring, the zone's only free frame. Thread 0 allocates a frame while
 * thread 2 takes it back (its ring's unit as its reservation: the zone
 * full meanwhile, its claim) and frees it, and thread 1 drains the zone:
 * the claims leave a frame free at every instant but inside thread 2's
 * hold, so thread 0 must not fail (its failing pass reads every CPU's
 * ring).
 */
MU_TEST(mu_ring_enomem, "buddy.units_ring_enomem",
	"the only free frame in another CPU's hand-over ring", 3, 1, 3, 20000,
	.script = { "0", "d", "0l" }, .setup = "5", .setup2 = "432100kl",
	.claims = true, .nocache = true, .need = "w")

/*
 * The same with two CPUs: in setup thread 1 fills a unit, drains, frees
 * its last frame (its ring) and takes the other unit whole (order 5).
 * Thread 0 allocates a frame while thread 1 drains (its ring emptied onto
 * the shared stacks: the unit moves between places no failing pass may
 * miss): no ENOMEM at any interleaving (nothing else is ever taken).
 */
MU_TEST(mu_ring_flush, "buddy.units_ring_flush",
	"the only free frame in a ring its owner empties", 2, 2, 3, 20000,
	.script = { "0", "k" }, .setup = "432100kl5", .claims = true,
	.nocache = true)

/*
 * And against the ring's own take: thread 1 allocates a frame (its
 * ring's unit becomes its reservation, the mark cleared) and frees it
 * while thread 0 allocates one: thread 0 fails only while thread 1
 * holds the frame (its claim), and the zone's invariants (B3: no mark
 * without a slot) hold at the end.
 */
MU_TEST(mu_ring_take, "buddy.units_ring_take",
	"the only free frame in a ring its owner takes back", 2, 2, 3, 20000,
	.script = { "0", "0l" }, .setup = "432100kl5", .claims = true,
	.nocache = true)

/*
 * docs/v3-status.md item 50: a unit emptied in its owner's ring kept as
 * that owner's res (bl_keep_emptied()). In setup thread 1 fills unit 0
 * (orders 4, 3, 2, 1, 0, 0), drains (unit 0 full, named by nothing),
 * takes an order-4 block of unit 1 (its res, 16 frames free) and frees
 * unit 0's blocks but its last frame (unit 0 into its ring). Thread 1
 * frees that frame (unit 0 kept: reserved, every frame free, named by
 * res; unit 1 released into the ring) while thread 0 asks for order 5:
 * only unit 0 can serve it, and it is free from the free's CAS to word 0
 * on (exact_up), kept below as a reserved empty unit named by res, which
 * the core's failing loop must reclaim. mc_run_units
 * buddy.units_ring_keep fails (B4 broken, or false ENOMEM) with
 * buddy-v3-keep-unnamed.
 */
MU_TEST(mu_ring_keep, "buddy.units_ring_keep",
	"order 5 vs a unit kept below by its owner's free", 2, 2, 3, 20000,
	.script = { "5", "f" }, .setup = "432100k4fffff", .exact_up = true,
	.nocache = true)

const struct mc_test *const mc_tests_buddy_units[] = {
	/* docs/v3-status.md item 38: per-CPU block caches at the contract */
	&mu_adv_df, &mu_adv_df_own, &mu_adv_df_refill, &mu_adv_free2,
	&mu_adv_enomem, &mu_updown, &mu_enomem, &mu_list, &mu_stale,
	&mu_enomem_up, &mu_enomem_core, &mu_enomem_line, &mu_edge, &mu_at_move,
	&mu_below_move, &mu_free_run, &mu_free_run2, &mu_keep, &mu_enomem_rsv,
	/* docs/v3-status.md item 17 */
	&mu_free_run_held, &mu_free_run_claimed, &mu_free_run_reuse,
	&mu_free_run_reuse_cache, &mu_stale_look, &mu_stale_look_word,
	&mu_snapshot_aba, &mu_snapshot_aba_below, &mu_refill_aba,
	&mu_refill_aba_drain, &mu_ver_clear, &mu_ver_clear_drain,
	&mu_adopt_stale, &mu_adopt_stale_below, &mu_below_fail2,
	/* item 19 */
	&mu_hint_stale,
	/* item 16: buddy.units_enomem_line's history over two lines */
	&mu_enomem_line2,
	/* docs/v3-status.md item 21 */
	&mu_below_core2, &mu_below_core_merge,
	/* item 23 */
	&mu_alloc_fail2,
	/* item 27: version 2's cache configurations over reservations */
	&mu_drain_window, &mu_cache, &mu_drain, &mu_at_rsv, &mu_at_rsv5,
	/* item 37: the per-CPU block caches */
	&mu_cache_df2, &mu_cache_drain_df, &mu_cache_reuse_df, &mu_cache_remote,
	&mu_cache_enomem, &mu_cache_enomem_stale, &mu_cache_enomem6_stale,
	&mu_cache_at,
	/* item 44: the hand-over ring */
	&mu_ring_enomem, &mu_ring_flush, &mu_ring_take, &mu_ring_keep, NULL
};
