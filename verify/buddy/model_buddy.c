/*
 * model_buddy.c: the lock-free buddy (buddy.h) against the classic locked
 * buddy (buddy_locked.h) as reference model, over random operation
 * sequences from many seeds.
 *
 * Every call goes to the lock-free zone first, and is mirrored on the
 * reference: an allocation at the address the zone chose must be possible
 * there (alloc_at of the same block), so the two always hold the same
 * allocated blocks; a failure (ENOMEM) must be a failure there too; a bad
 * input must get the same error code from both. After every operation:
 * allocated blocks never overlap (an owner per frame), lie inside the
 * regions, are aligned, and the free frames agree (caches counted). Every
 * CHECK_EVERY operations the zone's invariants are checked
 * (buddy_zone_check), and at each quiescent point (caches drained) the
 * zone must be fully coalesced and equal to the reference frame by frame:
 * both hold the same allocated blocks and a fully coalesced buddy's free
 * blocks are determined by them.
 *
 * Four regions: holes, an odd start, and two adjacent regions whose
 * frames are buddies by number but must never merge. Over units
 * (MODEL_RSHIFT > 0) six, at any frame boundary: edge units at their
 * starts and ends, two regions inside one unit of pfns, one region
 * adjacent to another inside a unit (model_regions()).
 *
 * Built with MODEL_SHIFT s > 0 (model_buddy_units), against the core of
 * buddy version 3 (lf_buddy_units): every frame number and order of the
 * model is scaled by 2^s (regions, addresses of alloc_at and bad frees,
 * limits, runs), so that only the core's orders (>= s) and whole units
 * are asked for; limits and bad addresses still fall at every frame and
 * byte, inside units too.
 *
 * Built with MODEL_RSHIFT 5 and MODEL_SHIFT 0 (model_buddy_v3), against
 * both levels of version 3 (lf_buddy_units): regions and positions are
 * scaled by 32 (regions offset by frames: edge units), orders and run lengths
 * are not, so that allocations and frees of every order go through the lower
 * level or the core: alloc_below and alloc_at of every order, runs of every
 * length (a last piece below a unit in a lower unit), each with the
 * oracle's result and error code; the model counts those below a unit.
 *
 * Usage: model_buddy [--seeds N] [--ops N] [--seed S]   (S: replay one)
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buddy.h"
#include "buddy_locked.h"
#include "check.h"

#ifndef MODEL_SHIFT
#define MODEL_SHIFT 0
#endif
#ifndef MODEL_RSHIFT
#define MODEL_RSHIFT MODEL_SHIFT
#endif
#define G ((uint64_t)1 << MODEL_SHIFT)  /* frames per model frame */
#define R ((uint64_t)1 << MODEL_RSHIFT) /* frames per model position */
/* Both levels of version 3: orders below a unit asked for too. */
#define MODEL_V3 (MODEL_RSHIFT > MODEL_SHIFT)
#define UNIT_ORDER 5 /* version 3's unit: 32 frames */

#define NCPUS 3
#define MAXLIVE 4096
#define CHECK_EVERY 16
#define QUIESCE_EVERY 512

struct live {
	uint64_t addr;
	uint64_t frames; /* a block: 2^order; a run: any count */
	unsigned order;
	bool run;
};

struct model {
	struct buddy_region rg[6];
	unsigned nrg;
	struct buddy_zone *z;
	struct buddy_locked *ref;
	void *zmeta, *rmeta;
	struct live live[MAXLIVE];
	unsigned nlive;
	uint8_t *owned; /* per frame of the address space covered */
	uint64_t span;  /* frames covered by owned[] */
	uint64_t rng;
	uint64_t seed, op;
	uint64_t small;     /* allocations below a unit that succeeded */
	uint64_t placed;    /* alloc_below, alloc_at, runs below a unit (V3) */
	uint64_t placed_no; /* those that failed (as the oracle) */
};

static uint64_t rnd(struct model *m)
{
	m->rng ^= m->rng << 13;
	m->rng ^= m->rng >> 7;
	m->rng ^= m->rng << 17;
	return m->rng;
}

static unsigned rnd_below(struct model *m, unsigned n)
{
	return (unsigned)(rnd(m) % n);
}

#define MCHECK(m, cond)                                                        \
	do {                                                                   \
		bool mc_ = (cond);                                             \
		CHECK(mc_);                                                    \
		if (!mc_) {                                                    \
			fprintf(stderr, "  seed %" PRIu64 " op %" PRIu64 "\n", \
				(m)->seed, (m)->op);                           \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* Regions with holes and odd alignments, varied by seed. */
static void model_regions(struct model *m)
{
	uint64_t f = BUDDY_FRAME_SIZE * R;
	unsigned v = (unsigned)(m->seed % 3);
	uint64_t end2 = v == 2 ? 8192 : 6144;
#if MODEL_RSHIFT > 0
	/*
	 * Over units: regions at any frame boundary, so that their partial
	 * units are edge units (docs/design.md 2.7, "The word"): starts and
	 * ends inside units, varied by seed (region 0 ends on a unit for
	 * one seed in three, region 1 starts on one); region 3 adjacent to
	 * region 2 inside one unit of pfns (two edge units: the index layout
	 * gives each region units of its own); regions 4 and 5 smaller than
	 * a unit, both in one unit of pfns with a hole between them.
	 */
	uint64_t F = BUDDY_FRAME_SIZE, a = 1 + m->seed % 31,
		 b = 1 + (m->seed / 31) % 31, e = (end2 + 1000) * R;
	m->nrg = 6;
	m->rg[0] = (struct buddy_region){ 256 * f + a * F,
					  (300 + v * 17) * f - a * F +
						  (v == 0 ? 0 : b * F) };
	m->rg[1] = (struct buddy_region){ 1029 * f, (1000 + v) * f + b * F };
	m->rg[2] = (struct buddy_region){ 4096 * f + b * F,
					  (end2 - 4096) * f + (a - b) * F };
	m->rg[3] = (struct buddy_region){ end2 * f + a * F,
					  1000 * f - (a + 3) * F };
	m->rg[4] =
		(struct buddy_region){ (e + 2 + a % 8) * F, (1 + b % 12) * F };
	m->rg[5] = (struct buddy_region){ (e + 24) * F, (1 + a % 8) * F };
	m->span = e + R;
#ifdef MODEL_ONE_REGION
	/*
	 * Region 0 alone (edge units at both ends): the one-region fast
	 * paths of orders 0-4 (buddy_cache.c), bad frees included.
	 */
	m->nrg = 1;
#endif
	return;
#endif
	m->nrg = 4;
	m->rg[0] = (struct buddy_region){ 256 * f, (300 + v * 17) * f };
	m->rg[1] = (struct buddy_region){ 1029 * f, (1000 + v) * f };
	m->rg[2] = (struct buddy_region){ 4096 * f, (end2 - 4096) * f };
	/* Adjacent to region 2: buddies by number that must never merge. */
	m->rg[3] = (struct buddy_region){ end2 * f, 1000 * f };
	m->span = (end2 + 1000) * R;
}

static void model_init(struct model *m, uint64_t seed)
{
	memset(m, 0, sizeof(*m));
	m->seed = seed;
	m->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	model_regions(m);
	size_t zs = buddy_meta_size(m->rg, m->nrg, NCPUS);
	size_t rs = buddy_locked_meta_size(m->rg, m->nrg);
	CHECK_FATAL(zs && rs);
	m->zmeta = aligned_alloc(64, (zs + 63) & ~(size_t)63);
	m->rmeta = aligned_alloc(64, (rs + 63) & ~(size_t)63);
	m->owned = calloc(m->span, 1);
	CHECK_FATAL(m->zmeta && m->rmeta && m->owned);
	CHECK_FATAL(buddy_zone_init(&m->z, m->zmeta, zs, m->rg, m->nrg,
				    NCPUS) == BUDDY_OK);
	CHECK_FATAL(buddy_locked_init(&m->ref, m->rmeta, rs, m->rg, m->nrg) ==
		    BUDDY_OK);
	/* CPU 2 runs without a cache: small orders use the stacks. */
	buddy_cpu_cache_enable(buddy_zone_cpu(m->z, 2), false);
#if MODEL_RSHIFT > 0
	{
		/*
		 * The core's arrays and the lower level's are per unit (20
		 * bytes a unit): below a byte a frame with the fixed parts.
		 */
		struct buddy_stats st;
		buddy_zone_stats(m->z, &st);
#ifndef MODEL_ONE_REGION /* one small region: the fixed parts weigh */
		CHECK(zs < st.total_frames);
#endif
		/*
		 * Below a unit on a free zone: frees of blocks and runs that
		 * were never allocated say EDOUBLE, nothing changed; nothing
		 * is refused with BUDDY_ENOTSUP any more. Regions at any frame
		 * boundary are taken (edge units; model_regions()).
		 */
		struct buddy_cpu *c = buddy_zone_cpu(m->z, 0);
		uint64_t b = m->rg[1].base; /* on a unit */
#ifdef MODEL_ONE_REGION
		uint64_t ub = (uint64_t)BUDDY_FRAME_SIZE << UNIT_ORDER;
		b = (m->rg[0].base + ub - 1) / ub * ub; /* region 0's first */
#endif
		for (unsigned o = 0; o < UNIT_ORDER; o++) {
			CHECK_EQ(buddy_free(c, b, o), BUDDY_EDOUBLE);
			CHECK_EQ(buddy_free(c, b + BUDDY_FRAME_SIZE, 0),
				 BUDDY_EDOUBLE);
		}
		static const uint64_t runs[] = { 1, 3, 31, 33, 63, 95 };
		for (unsigned i = 0; i < 6; i++)
			CHECK_EQ(buddy_free_run(c, b, runs[i]),
				 buddy_locked_free_run(m->ref, b, runs[i]));
		struct buddy_region odd = { m->rg[0].base + BUDDY_FRAME_SIZE,
					    BUDDY_FRAME_SIZE };
		CHECK(buddy_meta_size(&odd, 1, 1) != 0);
		buddy_zone_stats(m->z, &st);
		CHECK_EQ(st.free_frames, st.total_frames);
		CHECK_EQ(st.rejected, 2 * UNIT_ORDER + 6);
		CHECK_EQ(st.rejected_by[-BUDDY_ENOTSUP], 0);
	}
#endif
}

static void model_fini(struct model *m)
{
	free(m->zmeta);
	free(m->rmeta);
	free(m->owned);
}

static struct buddy_cpu *model_cpu(struct model *m)
{
	return buddy_zone_cpu(m->z, rnd_below(m, NCPUS));
}

/* Mark [addr, addr + frames) owned: in a region, never twice. */
static void model_own(struct model *m, uint64_t addr, uint64_t frames, bool own)
{
	uint64_t pfn = addr / BUDDY_FRAME_SIZE;
	bool inside = false;
	for (unsigned i = 0; i < m->nrg; i++) {
		uint64_t b = m->rg[i].base / BUDDY_FRAME_SIZE;
		uint64_t e = b + m->rg[i].size / BUDDY_FRAME_SIZE;
		inside |= pfn >= b && pfn + frames <= e;
	}
	MCHECK(m, inside && pfn + frames <= m->span);
	for (uint64_t i = 0; i < frames; i++) {
		MCHECK(m, m->owned[pfn + i] == (own ? 0 : 1));
		m->owned[pfn + i] = own;
	}
}

static void model_add(struct model *m, uint64_t addr, uint64_t frames,
		      unsigned order, bool run)
{
	model_own(m, addr, frames, true);
	MCHECK(m, m->nlive < MAXLIVE);
	m->live[m->nlive++] = (struct live){ addr, frames, order, run };
}

static unsigned model_order(struct model *m)
{
	unsigned r = rnd_below(m, 100);
	if (r < 60)
		return MODEL_SHIFT + rnd_below(m, 4);
	if (r < 90)
		return MODEL_SHIFT + 4 + rnd_below(m, 5);
	return MODEL_SHIFT + 9 + rnd_below(m, 4);
}

/* The pieces of a run, as buddy.h lays them out, mirrored on the model. */
static void model_ref_run(struct model *m, uint64_t addr, uint64_t n)
{
	uint64_t off = 0;
	while (off < n) {
		unsigned o = 63u - (unsigned)__builtin_clzll(n - off);
		MCHECK(m, buddy_locked_alloc_at(m->ref,
						addr + off * BUDDY_FRAME_SIZE,
						o) == BUDDY_OK);
		off += (uint64_t)1 << o;
	}
}

static void op_alloc(struct model *m)
{
	unsigned o = model_order(m);
	uint64_t a, ra;
	int rc = buddy_alloc(model_cpu(m), o, &a);
	if (rc == BUDDY_OK) {
		m->small += o < UNIT_ORDER;
		MCHECK(m, a % (BUDDY_FRAME_SIZE << o) == 0);
		MCHECK(m, buddy_locked_alloc_at(m->ref, a, o) == BUDDY_OK);
		model_add(m, a, (uint64_t)1 << o, o, false);
		return;
	}
	MCHECK(m, rc == BUDDY_ENOMEM);
	MCHECK(m, buddy_locked_alloc(m->ref, o, &ra) == BUDDY_ENOMEM);
}

/*
 * A limit for alloc_below: any frame boundary, or the end of an aligned
 * block (so often the end of a free one) exactly, or one byte or one
 * frame either side of it.
 */
static uint64_t below_limit(struct model *m)
{
	static const int64_t d[] = { 0,
				     0,
				     -1,
				     1,
				     -(int64_t)BUDDY_FRAME_SIZE,
				     (int64_t)BUDDY_FRAME_SIZE };
	if (rnd_below(m, 2))
		return (256 * R + rnd_below(m, (unsigned)(6000 * R))) *
		       BUDDY_FRAME_SIZE;
	unsigned bo = MODEL_SHIFT + rnd_below(m, 8);
	uint64_t end = (((uint64_t)rnd_below(m, (unsigned)m->span) >> bo) + 1)
		       << bo;
	return end * BUDDY_FRAME_SIZE + (uint64_t)d[rnd_below(m, 6)];
}

static void op_alloc_below(struct model *m)
{
	/* The smallest order often. */
	unsigned o = MODEL_SHIFT + (rnd_below(m, 3) ? rnd_below(m, 6) : 0);
	uint64_t limit = below_limit(m);
	uint64_t a, ra;
	if (MODEL_V3 && rnd_below(m, 2))
		o += UNIT_ORDER; /* the core's orders half the time */
	int rc = buddy_alloc_below(model_cpu(m), o, limit, &a);
	m->placed += MODEL_V3 && o < UNIT_ORDER;
	m->placed_no += MODEL_V3 && o < UNIT_ORDER && rc != BUDDY_OK;
	if (rc == BUDDY_OK) {
		MCHECK(m, a + (BUDDY_FRAME_SIZE << o) <= limit);
		MCHECK(m, buddy_locked_alloc_at(m->ref, a, o) == BUDDY_OK);
		model_add(m, a, (uint64_t)1 << o, o, false);
		return;
	}
	MCHECK(m, rc == BUDDY_ENOMEM);
	MCHECK(m,
	       buddy_locked_alloc_below(m->ref, o, limit, &ra) == BUDDY_ENOMEM);
}

static void op_alloc_at(struct model *m)
{
	unsigned o = MODEL_SHIFT + rnd_below(m, 7);
	uint64_t pfn = (200 + rnd_below(m, 9100)) * R;
	if (MODEL_V3) {
		pfn += rnd_below(m, (unsigned)R); /* any frame of a unit */
		if (rnd_below(m, 2))
			o += UNIT_ORDER;
	}
	if (rnd_below(m, 8))
		pfn &= ~(((uint64_t)1 << o) - 1);
	uint64_t a = pfn * BUDDY_FRAME_SIZE;
	if (rnd_below(m, 64) == 0)
		a += 8; /* not frame-aligned */
	int rc = buddy_alloc_at(model_cpu(m), a, o);
	m->placed += MODEL_V3 && o < UNIT_ORDER;
	m->placed_no += MODEL_V3 && o < UNIT_ORDER && rc == BUDDY_EBUSY;
	MCHECK(m, rc == buddy_locked_alloc_at(m->ref, a, o));
	if (rc == BUDDY_OK)
		model_add(m, a, (uint64_t)1 << o, o, false);
}

static void op_alloc_run(struct model *m)
{
	uint64_t n = (1 + rnd_below(m, 80)) * G, a, ra;
	if (MODEL_V3 && rnd_below(m, 2))
		n *= R; /* whole units half the time */
	int rc = buddy_alloc_run(model_cpu(m), n, &a);
	m->placed += MODEL_V3 && n % R != 0;
	m->placed_no += MODEL_V3 && n % R != 0 && rc != BUDDY_OK;
	if (rc == BUDDY_OK) {
		model_ref_run(m, a, n);
		model_add(m, a, n, 0, true);
		return;
	}
	MCHECK(m, rc == BUDDY_ENOMEM);
	MCHECK(m, buddy_locked_alloc_run(m->ref, n, &ra) == BUDDY_ENOMEM);
}

static void op_free(struct model *m)
{
	if (m->nlive == 0)
		return;
	unsigned i = rnd_below(m, m->nlive);
	struct live l = m->live[i];
	struct buddy_cpu *c = model_cpu(m);
	int rc = l.run ? buddy_free_run(c, l.addr, l.frames)
		       : buddy_free(c, l.addr, l.order);
	int rr = l.run ? buddy_locked_free_run(m->ref, l.addr, l.frames)
		       : buddy_locked_free(m->ref, l.addr, l.order);
	MCHECK(m, rc == BUDDY_OK && rr == BUDDY_OK);
	model_own(m, l.addr, l.frames, false);
	m->live[i] = m->live[--m->nlive];
}

/* Would free(a, o) free a live block (or a piece of a live run)? */
static bool model_is_good_free(struct model *m, uint64_t a, unsigned o)
{
	for (unsigned i = 0; i < m->nlive; i++) {
		struct live *l = &m->live[i];
		uint64_t off = 0, n = l->run ? l->frames : 1;
		while (off < n) {
			unsigned po = l->run ? 63u - (unsigned)__builtin_clzll(
							     n - off)
					     : l->order;
			if (l->addr + off * BUDDY_FRAME_SIZE == a && po == o)
				return true;
			off += (uint64_t)1 << po;
		}
	}
	return false;
}

/* A bad free: wrong order, tail, double, misaligned, out of range. */
static void op_bad_free(struct model *m)
{
	uint64_t a;
	unsigned o = MODEL_SHIFT + rnd_below(m, 8);
	if (m->nlive && rnd_below(m, 2)) {
		struct live l = m->live[rnd_below(m, m->nlive)];
		a = l.addr +
		    rnd_below(m, (unsigned)l.frames) * BUDDY_FRAME_SIZE;
	} else {
		a = (uint64_t)rnd_below(m, (unsigned)(9400 * R / G)) * G *
		    BUDDY_FRAME_SIZE;
	}
	if (rnd_below(m, 16) == 0)
		a += 512;
	if (rnd_below(m, 32) == 0)
		o = BUDDY_MAX_ORDER + 1 + rnd_below(m, 3);
	if (model_is_good_free(m, a, o))
		return;
	int rc = buddy_free(model_cpu(m), a, o);
	MCHECK(m, rc != BUDDY_OK);
	MCHECK(m, rc == buddy_locked_free(m->ref, a, o));
}

/*
 * Frame by frame; scaled (MODEL_SHIFT), every frame of one model frame in
 * eight and the first frame of the others (the rest are tails in both).
 */
static uint64_t model_next_frame(uint64_t a)
{
	uint64_t pfn = a / BUDDY_FRAME_SIZE + 1;
	if (!MODEL_V3 && (pfn / G) % 8 != 0)
		pfn = (pfn + G - 1) / G * G;
	return pfn * BUDDY_FRAME_SIZE;
}

static void model_compare_frames(struct model *m)
{
	for (unsigned i = 0; i < m->nrg; i++) {
		for (uint64_t a = m->rg[i].base;
		     a < m->rg[i].base + m->rg[i].size;
		     a = model_next_frame(a)) {
			unsigned k1, o1, k2, o2;
			MCHECK(m,
			       buddy_zone_frame(m->z, a, &k1, &o1) == BUDDY_OK);
			MCHECK(m, buddy_locked_frame(m->ref, a, &k2, &o2) ==
					  BUDDY_OK);
			MCHECK(m, k1 == k2 && o1 == o2);
		}
	}
}

static void model_check(struct model *m, bool quiesce)
{
	struct buddy_stats zs, rs;
	uint64_t frame;
	if (quiesce) {
		struct buddy_cpu *c = model_cpu(m);
		if (rnd_below(m, 2))
			buddy_zone_sweep(c);
		buddy_zone_drain_all(c);
	}
	int inv = buddy_zone_check(m->z, quiesce, &frame);
	if (inv)
		fprintf(stderr, "invariant B%d broken at frame %" PRIu64 "\n",
			inv, frame);
	MCHECK(m, inv == 0);
	MCHECK(m, buddy_locked_check(m->ref, &frame) == 0);
	buddy_zone_stats(m->z, &zs);
	buddy_locked_stats(m->ref, &rs);
	MCHECK(m, zs.free_frames + zs.cached_frames == rs.free_frames);
	if (quiesce)
		model_compare_frames(m);
}

static void model_step(struct model *m)
{
	/*
	 * An operation picked by weight, as every model test's step does; the
	 * weights are this model's.
	 */
	unsigned r = rnd_below(m, 100);
	if (r < 30)
		op_alloc(m);
	else if (r < 36)
		op_alloc_below(m);
	else if (r < 42)
		op_alloc_at(m);
	else if (r < 46)
		op_alloc_run(m);
	else if (r < 88)
		op_free(m);
	else if (r < 97)
		op_bad_free(m);
	else if (r < 98)
		buddy_cpu_drain(model_cpu(m));
	else if (r < 99)
		buddy_zone_drain_all(model_cpu(m));
	else
		buddy_zone_sweep(model_cpu(m));
}

static void model_run(uint64_t seed, uint64_t ops)
{
	struct model *m = malloc(sizeof(*m));
	CHECK_FATAL(m);
	model_init(m, seed);
	model_check(m, true);
	for (m->op = 0; m->op < ops; m->op++) {
		model_step(m);
		if (m->op % CHECK_EVERY == 0)
			model_check(m, m->op % QUIESCE_EVERY == 0);
	}
	while (m->nlive)
		op_free(m);
	model_check(m, true);
	if (MODEL_V3) {
		printf("model_buddy_v3: seed %" PRIu64 ": %" PRIu64
		       " allocations below a unit, %" PRIu64
		       " alloc_below, alloc_at and runs below a unit (%" PRIu64
		       " ENOMEM or EBUSY)\n",
		       seed, m->small, m->placed, m->placed_no);
		/* The lower level must have been used, constraints too. */
		MCHECK(m, m->small > ops / 10);
		MCHECK(m, m->placed > ops / 20 && m->placed_no > 0);
	}
	struct buddy_stats zs;
	buddy_zone_stats(m->z, &zs);
	MCHECK(m, zs.free_frames == zs.total_frames);
	model_fini(m);
	free(m);
}

int main(int argc, char **argv)
{
	return check_model_main(argc, argv, "model_buddy", 40, 25000,
				model_run);
}
