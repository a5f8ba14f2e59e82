/*
 * buddy_lower.h: the lower level of the buddy's version 3 above its unit
 * words (docs/design.md 2.7): reservations, the partial stacks, listing,
 * stealing and giving units back, over a source of whole units. Built
 * twice from the same source, never in lf_buddy nor in the kernel yet
 * (docs/v3-status.md): over the core of version 3 in lf_buddy_units
 * (BUDDY_CORE_SHIFT 5: the source is the core, called directly, and the
 * zone's lower level lives in struct buddy_zone, buddy_i.h), and alone in
 * lf_buddy_lower (shift 0: a stand-in source through function pointers,
 * for test_buddy_lower and the model checker).
 *
 * Who names a unit with free frames (B4 of the lower level): a context's
 * reservation (the word's R bit set), a partial stack entry (pstk[u] =
 * class + 1), a slot of a context's hand-over ring over the core (pstk[u]
 * = BL_PRING), or a context carrying it inside an in-flight section. The
 * listing race (a free into an unreserved unit against a popper dropping
 * it as full) is settled by seq_cst on both sides: the freer's CAS on the
 * word, then its load of pstk; the popper's clear of pstk, then its load
 * of the word (docs/design.md 2.7, "Listing"; mc buddy.lower_list).
 *
 * Frames are numbered from 0 within the zone's units: frame x is frame
 * x % 32 of unit x / 32.
 */
#ifndef BUDDY_LOWER_H
#define BUDDY_LOWER_H

#include "buddy_unit.h"
#include "lf_stack.h"

/*
 * Over the core (shift 5) each unit word has its cached mask beside it
 * (struct bl_zone's mask): the word array has a stride of 16 bytes, and
 * BU_W(u) is the index of unit u's word in it (and of its mask in mask[],
 * which starts 8 bytes after word[]): 4 units a line, the mask on its
 * word's line (docs/v3-status.md items 32 and 37, layout (b)). Alone
 * (shift 0) the words are packed.
 */
#if BUDDY_CORE_SHIFT > 0
#define BU_WS 2u
#else
#define BU_WS 1u
#endif
#define BU_W(u) ((u)*BU_WS)

#define BL_CLASSES (BU_MAX_ORDER + 1) /* partial stacks: largest free order */
#define BL_NONE UINT32_MAX
/*
 * A reservation taken from the source whole is a line of BL_LINE units:
 * their words fill one cache line, so two contexts' reservations never
 * write one line (docs/design.md 2.7); a unit from a partial stack is
 * reserved alone.
 */
#define BL_LINE (LF_CACHELINE / 8)
#define BL_LINE_ORDER 3 /* log2(BL_LINE): a line is a unit-order-3 block */
_Static_assert(BL_LINE == 1u << BL_LINE_ORDER, "line order");

#ifndef BUDDY_CORE_SHIFT
#define BUDDY_CORE_SHIFT 0 /* as buddy_i.h */
#endif

/*
 * The hand-over ring over the core (shift 5; docs/design.md 2.7, "The
 * hand-over ring", docs/v3-status.md items 39 and 44): the units a
 * context's release or free would list on a shared partial stack wait in
 * its own ring of BL_RING units first (pstk[u] = BL_PRING), the oldest
 * going to the shared stacks when it is full; one that its free empties
 * may stay as its res instead of going to the core (bl_keep_emptied(),
 * item 50). None alone (shift 0: the stand-in source's tests and mc
 * configurations keep the shared stacks).
 */
#if BUDDY_CORE_SHIFT > 0
#define BL_RING 16
#else
#define BL_RING 0
#endif
#define BL_PRING ((uint16_t)(BL_CLASSES + 1)) /* pstk: in a ring */

#if BUDDY_CORE_SHIFT > 0
struct buddy_zone;
struct buddy_cpu;
/*
 * The level below is the core of version 3 (buddy_core.c): a unit is
 * taken by buddy_unit_take_line() or buddy_unit_take() and given back by
 * buddy_unit_give(), called directly; unit u is core index u (frame
 * index u * 32), so a lower frame number is the core's frame index.
 */
struct bl_source {
	struct buddy_zone *core; /* (i) */
};
#else
/* The level below: whole units (a stand-in of the core, in the tests). */
struct bl_source {
	/* A unit for the lower level (its word is 0), or BL_NONE. */
	uint32_t (*take)(void *arg);
	/* Unit u, whose word a CAS of ours has just made 0, goes back. */
	void (*give)(void *arg, uint32_t u);
	/* A snapshot: does it hold a unit? (No section for a pass over
	 * nothing, bl_alloc().) */
	bool (*has)(void *arg);
	/*
	 * BL_LINE units aligned to BL_LINE, all at once: the first, or
	 * BL_NONE (then take() is tried). May be NULL.
	 */
	uint32_t (*take_line)(void *arg);
	void *arg;
};
#endif

enum bl_ctr {
	BL_ALLOCS,
	BL_FREES,
	BL_LFREE, /* lower free frames created minus taken (a delta) */
	BL_TAKEN, /* units taken from the source */
	BL_GIVEN, /* units given back */
	BL_LISTED,
	BL_DROPPED, /* stale partial entries dropped */
	BL_STOLEN,  /* allocations from another context's reservation */
	BL_NCTR,
};

struct bl_zone;

/* A context: one thread at a time (a CPU). Tags as buddy_i.h. */
struct bl_ctx {
	struct bl_zone *z; /* (i) */
	/* (i) z->word: the fast paths' word in one load, not two. */
	lf_atomic_u64 *word;
#if BUDDY_CORE_SHIFT > 0
	/* (i) z->mask, for the same reason. */
	lf_atomic_u64 *mask;
	/*
	 * (o, plain) The cached mask as this context's last allocation CAS
	 * in the lower paths saw it (bu_cas_alloc_m()): the bits its lazy
	 * clear may take (bl_mask_clear()).
	 */
	uint64_t seen;
#endif
	uint32_t id; /* (i) */
	/*
	 * (o, plain) The next unit from the source is a single one, not a
	 * line: set by bl_drain() (a context that gives its memory back
	 * keeps one unit and takes units one at a time, as v2's spare
	 * slots keep small blocks), cleared by that take.
	 */
	uint8_t single;
#if BUDDY_CORE_SHIFT > 0
	/*
	 * (i) The core's context of the same CPU. Its busy word is this
	 * context's too: the lower level's in-flight sections are the
	 * core's (one window over both levels, docs/design.md 2.7, "Core
	 * <-> lower"), so a unit between its CAS to word 0 and the core,
	 * or memory appearing at the core during a lower pass, breaks
	 * either level's failing pass (mc buddy.units_enomem_up and
	 * buddy.units_enomem_core).
	 */
	struct buddy_cpu *cpu;
#endif
	/*
	 * (o) The reserved unit the fast path tries, or BL_NONE; line: the
	 * first unit of the reserved line (all its units reserved), or
	 * BL_NONE. Written by the owner inside in-flight sections (moving
	 * res inside its line needs none: the line names the same units);
	 * others read them with acquire to steal or reclaim.
	 */
	lf_atomic_u32 res;
	lf_atomic_u32 line;
	/*
	 * (o, plain) hint[k]: the first frame (unit and offset) of the
	 * block of order k this context freed last into a unit of its
	 * reservation (res or its line), BL_NONE if none or taken. A hint
	 * only: the word's CAS decides, so a stale one (its unit taken back
	 * to the core by another context's reclaim, or down again in
	 * another context's reservation) costs a failed CAS or takes one
	 * free block from a unit that is not ours, as a steal does
	 * (docs/design.md 2.7, "The hint"). Forgotten for the units this
	 * context gives up (bl_release(), bl_drain(), bl_let_go()).
	 */
	uint32_t hint[BL_CLASSES];
#if BL_RING
	/*
	 * (o) The hand-over ring: unit numbers, BL_NONE in an empty slot;
	 * rh (o, plain) the slot of the oldest, rn (o, plain) how many.
	 * Written only by the owner, inside its in-flight sections, with
	 * release stores (they carry the section's entry, as buddy_busy()
	 * says); read with acquire by every context's failing pass, which
	 * allocates from the units named by CAS on their words (exact
	 * ENOMEM over the rings: bl_rings_alloc()). A unit is named here
	 * exactly while its pstk is BL_PRING (B3: set by the owner's CAS
	 * from 0 before the slot, cleared by the owner after the slot is
	 * emptied).
	 */
	lf_atomic_u32 ring[BL_RING];
	uint8_t rh, rn;
	/*
	 * (c) Units bl_keep_emptied() kept instead of giving them to the
	 * core, modulo 256: every 8th looks at the other contexts' names.
	 */
	uint8_t keeps;
	/*
	 * (o) rn, published after each change (release, inside the
	 * section, as the slots) so that a failing pass skips an empty
	 * ring on one load: 16 loads a context otherwise, scheduling
	 * points each under the model checker.
	 */
	lf_atomic_u32 rlen;
#endif
#if BUDDY_CORE_SHIFT == 0
	lf_atomic_u32 busy; /* (o) in-flight sections, as buddy_busy */
#endif
	lf_atomic_u64 ctr[BL_NCTR]; /* (o) relaxed load + store */
} LF_CACHE_ALIGNED;

struct bl_stack_line {
	struct lf_stack s; /* (a) */
} LF_CACHE_ALIGNED;

struct bl_zone {
	struct bl_stack_line partial[BL_CLASSES]; /* (a) */
	lf_atomic_u64 *word;  /* (a) per unit (buddy_unit.h) */
	lf_atomic_u32 *plink; /* (a) per unit: partial stack link */
	/*
	 * (a) per unit: 0, or j + 1 while partial stack j holds the unit's
	 * link, or BL_PRING while a context's hand-over ring names it (B3:
	 * set only by the CAS that sees 0, cleared only by the popper or
	 * the ring's owner). An array of its own, not bits of the unit's core
	 * word: it survives the unit's trips to the core (docs/design.md 2.7,
	 * "Partial stacks"; mc buddy.lower_up).
	 */
	lf_atomic_u16 *pstk;
#if BUDDY_CORE_SHIFT > 0
	/*
	 * (a) per unit: the cached mask (the low 32 bits of the 8 bytes
	 * beside the unit's word, mask[BU_W(u)]: the word's line). Bit i: "the
	 * block whose head is frame i went into a per-CPU cache (a free's push
	 * or a refill) and no allocation has taken frame i from the word
	 * since". Set by a free of a cached block (an 8-byte CAS from the
	 * value whose version it read before the word: a set bit refuses it)
	 * and by a refill's CAS; the high 32 bits the version (BL_MASK_BITS
	 * below, v3-status item 55); cleared by the pop of that entry and,
	 * lazily, by every allocation that takes the frame from the word
	 * (bl_mask_clear()); never by a drain, whose bits go stale until then
	 * (docs/design.md 2.7, "Per-CPU block caches"; set by
	 * buddy_zone_init(), 0 at first).
	 */
	lf_atomic_u64 *mask;
#endif
	uint32_t nunits;      /* (i) */
	struct bl_source src; /* (i) */
	struct bl_ctx *ctx;   /* (i) */
	uint32_t nctx;        /* (i) */
};

/*
 * The cached mask's high 32 bits: its version, advanced (BU_MASK_VER) by
 * every write that clears a bit, but for a pop's (an allocation's lazy
 * clear, bl_mask_clear(); a refill's 16-byte CAS; bl_adopt()'s zeroing).
 * A cached free sets its block's bit by an 8-byte CAS of the mask alone,
 * after loading the mask (acquire), then the word; while the version it
 * read stands, the block is still the allocated head that word showed:
 * every CAS that frees frames of a word frees blocks whose bit is set (a
 * cached block's, a free's or a free_run's hold) and leaves it set, so a
 * free of the block sets or keeps its bit, which only such a write can
 * clear, and no other shape of its frames comes before it is freed
 * (docs/design.md 2.7, "The mask's version"; v3-status items 55, 57).
 */
#define BL_MASK_BITS 0xffffffffull
/* The cached mask's bits of the frames of a block of order k at frame x. */
static inline uint32_t bl_mask_bits(uint32_t x, unsigned k)
{
	return (uint32_t)bu_bits(1u << k) << (x % BU_FRAMES);
}

#if BUDDY_CORE_SHIFT > 0
/*
 * After an allocation's CAS took the frames m of unit u from its word,
 * before the block is handed out or cached: the stale bits there cleared,
 * those of seen only, the mask at the CAS's instant (compared with the
 * word: bu_cas_word_m(); a refill clears them in its own CAS, v3-status
 * item 55): every bit set on
 * those frames before the CAS (a drain's, a hold's left by a free into
 * the word or a free_run), none set after the CAS (a late free of the
 * block: its bit stays). A write only if one is set. Release: a free
 * whose fetch_or (acq_rel) reads the cleared mask reads, at its second
 * load of the word, our CAS or a later word (buddy_cache.c). The argument:
 * docs/design.md 2.7, "Bits and the lazy clear".
 */
static inline void bl_mask_clear(lf_atomic_u64 *mask, uint32_t u, uint32_t m,
				 uint64_t seen)
{
	uint64_t mm = (uint64_t)m & seen; /* bits only: not the version */
	if (LF_LIKELY(mm == 0))
		return;
	/*
	 * The version advanced with the clear (BL_MASK_BITS above): a cached
	 * free that read the mask before it fails its CAS and reads the word
	 * again. Relaxed: compared by the CAS.
	 */
	uint64_t v = lf_load_u64(&mask[BU_W(u)], LF_RELAXED);
	/* Release: as the comment above says; relaxed on failure (again). */
	while (!lf_cas_u64(&mask[BU_W(u)], &v, (v & ~mm) + BU_MASK_VER,
			   LF_RELEASE))
		;
}
#define BL_MASK_CLEAR(c, u, m, s) bl_mask_clear((c)->mask, (u), (m), (s))
/* The mask beside word a (z->word[BU_W(u)]) and the snapshot's place. */
#define BL_MASK_OF(c, a) (&(c)->mask[(a) - (c)->word])
#define BL_SEEN(c) (&(c)->seen)
#define BL_SEEN_V(c) ((c)->seen)
#else
#define BL_MASK_CLEAR(c, u, m, s) ((void)(c), (void)(u), (void)(m), (void)(s))
#define BL_MASK_OF(c, a) ((void)(c), (void)(a), (const lf_atomic_u64 *)NULL)
#define BL_SEEN(c) ((void)(c), (uint64_t *)NULL)
#define BL_SEEN_V(c) ((void)(c), (uint64_t)0)
#endif

/*
 * Set up z over nunits units, every word 0 (every unit at the source),
 * with the caller's arrays (word, plink, pstk: nunits each) and contexts.
 * Over the core (shift 5), context i uses the core's context i
 * (buddy_zone_init() calls this; the core has nctx contexts).
 */
void bl_zone_init(struct bl_zone *z, lf_atomic_u64 *word, lf_atomic_u32 *plink,
		  lf_atomic_u16 *pstk, uint32_t nunits, struct bl_source src,
		  struct bl_ctx *ctx, uint32_t nctx);

/*
 * At init, after bl_zone_init() and before any context runs: unit u is an
 * edge unit, of which only frames [lo, hi) belong to a region (0 <= lo <
 * hi <= BU_FRAMES, not the whole unit). Its word gets those frames free
 * and every other frame an allocated head of order 0 for ever (never all
 * free: it never goes back to the source), and it is listed on the
 * partial stack of its class (B4), not reserved (docs/design.md 2.7, "The
 * word"). The caller refuses the outside frames before any word is read.
 */
void bl_zone_edge(struct bl_zone *z, uint32_t u, unsigned lo, unsigned hi);

/*
 * Allocate order k (<= BU_MAX_ORDER): its first frame in *frame. Tries
 * the block this context freed last in its reservation, the reservation,
 * the partial stacks, a unit from the source, then every other context's
 * reservation. BUDDY_ENOMEM is exact: only after a pass that found
 * nothing in a window in which no other context was in an in-flight
 * section (bl_alloc() says why that suffices); while others are in
 * flight it retries (the core's own window joins this one once
 * integrated: the source is the core).
 */
int bl_alloc(struct bl_ctx *c, unsigned k, uint32_t *frame);

/* Free the block of order k at frame; BUDDY_E* and nothing changed. */
int bl_free(struct bl_ctx *c, uint32_t frame, unsigned k);

/*
 * The per-CPU paths of bl_alloc() and bl_free(), inline here so that the
 * public layer of version 3 (buddy_cache.c) runs them in its own frame
 * after its own checks, with one set of counters (its own); their slow
 * paths stay out of line in buddy_lower.c. bl_alloc() and bl_free() are
 * these with the lower level's checks and counters around them.
 *
 * bl_alloc_slow(): bl_alloc() of k <= BU_MAX_ORDER when the hint did not
 * serve. bl_free_unreserved(): a free's CAS left unit u unreserved (word
 * nw): back to the source if nw is 0, else listed.
 */
int bl_alloc_slow(struct bl_ctx *c, unsigned k, uint32_t *frame);
void bl_free_unreserved(struct bl_ctx *c, uint32_t u, uint64_t nw);

/*
 * The hint (k <= BU_MAX_ORDER): the block of order k this context freed
 * last into its reservation, in any unit of it, taken back by one CAS
 * (LIFO), in *frame; false if it did not serve (then bl_alloc_slow()).
 * Order 0 by a call of its own with a constant order: the word's masks
 * fold to constants (a page allocator's common case).
 */
static inline bool bl_alloc_hint(struct bl_ctx *c, unsigned k, uint32_t *frame)
{
	uint32_t h = c->hint[k];
	uint64_t ow, nw;
	if (LF_UNLIKELY(h == BL_NONE))
		return false;
	lf_atomic_u64 *a = &c->word[BU_W(h / BU_FRAMES)];
	unsigned off = h % BU_FRAMES;
	uint64_t seen = 0;
	int rc = k == 0 ? bu_cas_m(a, BU_OP_ALLOC_AT, off, 0, &ow, &nw, NULL,
				   BL_MASK_OF(c, a), &seen)
			: bu_cas_m(a, BU_OP_ALLOC_AT, off, k, &ow, &nw, NULL,
				   BL_MASK_OF(c, a), &seen);
	if (rc != BUDDY_OK)
		return false;
	BL_MASK_CLEAR(c, h / BU_FRAMES, bl_mask_bits(h, k), seen);
	c->hint[k] = BL_NONE;
	*frame = h;
	return true;
}

/*
 * bl_free()'s work, inside the caller's in-flight section (memory
 * appears: docs/design.md 2.7, "Sections") and after its checks (k <=
 * BU_MAX_ORDER, frame's unit in the zone, frame aligned to 2^k), in
 * three steps so that the public layer can keep its fast path free of
 * calls (buddy_cache.c): bl_free_word(), the word's CAS (order 0 with a
 * constant order, as bl_alloc_hint()): BUDDY_OK with the new word in
 * *nw, or BUDDY_E* and nothing changed (BUDDY_EDOUBLE for a unit at the
 * source: not allocated at this level); if the unit is left unreserved
 * (R clear, word 0 included), bl_free_unreserved(); then bl_free_hint(),
 * the hint if it is our reservation. bl_free_cas() is the three.
 */
static inline int bl_free_word(struct bl_ctx *c, uint32_t frame, unsigned k,
			       uint64_t *nw)
{
	uint32_t u = frame / BU_FRAMES;
	unsigned i = frame % BU_FRAMES;
	uint64_t ow;
	lf_atomic_u64 *a = &c->word[BU_W(u)];
	/*
	 * The word alone: the block's bit is set (its free's hold), so no
	 * version need advance (the mask's version, above).
	 */
	int rc = k == 0 ? bu_cas(a, BU_OP_FREE, i, 0, &ow, nw, NULL)
			: bu_cas(a, BU_OP_FREE, i, k, &ow, nw, NULL);
	if (LF_UNLIKELY(rc != BUDDY_OK))
		return rc == BU_NOT_LOWER ? BUDDY_EDOUBLE : rc;
	return BUDDY_OK;
}

/*
 * The hint of a free into a unit of our reservation: res, or a unit of
 * our line (u ^ line < BL_LINE: a line is aligned to BL_LINE units, and
 * BL_NONE's complement of u is never that small).
 */
static inline void bl_free_hint(struct bl_ctx *c, uint32_t frame, unsigned k)
{
	uint32_t u = frame / BU_FRAMES;
	/* Relaxed: only we write them. */
	uint32_t l = lf_load_u32(&c->line, LF_RELAXED);
	if ((u ^ l) < BL_LINE || u == lf_load_u32(&c->res, LF_RELAXED))
		c->hint[k] = frame;
}

_Static_assert((BU_CORE & BU_RES) == 0, "word 0 is unreserved");
static inline int bl_free_cas(struct bl_ctx *c, uint32_t frame, unsigned k)
{
	uint64_t nw;
	int rc = bl_free_word(c, frame, k, &nw);
	if (LF_UNLIKELY(rc != BUDDY_OK))
		return rc;
	/* BU_CORE has R clear: one test for both. */
	if (LF_UNLIKELY(!bu_reserved(nw)))
		bl_free_unreserved(c, frame / BU_FRAMES, nw);
	bl_free_hint(c, frame, k);
	return BUDDY_OK;
}

/* Give up this context's reservation (its free frames stay findable). */
void bl_release(struct bl_ctx *c);

/*
 * buddy_cpu_drain() of version 3: give up the reservation but keep one
 * unit, its res if every frame of it is free (reserved, named by res
 * alone: found by other contexts' failing passes of every order as any
 * reserved empty unit, by stealing below order 5 and bl_reclaim_all()
 * above, and taken back by buddy_zone_drain_all()); the next unit from
 * the source is a single one (docs/design.md 2.7, "Contexts without a
 * cache"). A drain over a reservation that is only that kept unit
 * changes nothing and enters no section.
 */
void bl_drain(struct bl_ctx *c);

/*
 * Take every empty reserved unit back to the source: the number taken.
 * An in-flight section only for a unit it takes or releases: a call over
 * nothing enters none (the core's failing loop calls it in each quiet window).
 * Over the core, a reserved edge unit with every frame of its region free
 * (it cannot go back) is released and listed instead (not counted).
 */
uint32_t bl_reclaim_all(struct bl_ctx *c);

/* Take unit u back to the source if it is reserved and empty: true if so. */
bool bl_reclaim(struct bl_ctx *c, uint32_t u);

#if BUDDY_CORE_SHIFT > 0
/*
 * Constrained calls over the core (docs/design.md 2.7, "Constraints"),
 * for buddy_place.c. They take and change no reservation.
 *
 * bl_alloc_below(): a block of order k (<= BU_MAX_ORDER) ending by frame
 * index xend, in *frame; climit: the core's limit (buddy_fits(), in pfn)
 * for a unit whose first 2^k frames end by xend. bl_alloc_run(): a run of
 * n < 32 frames in one unit (bu_run). Exact ENOMEM, as bl_alloc().
 */
int bl_alloc_below(struct bl_ctx *c, unsigned k, uint64_t xend, uint64_t climit,
		   uint32_t *frame);
int bl_alloc_run(struct bl_ctx *c, unsigned n, uint32_t *frame);
/*
 * Unit u, whose core word the caller has just made LOWER (inside its
 * core section), gets its first word w (unreserved) and is listed if a
 * frame of it is free; held: frames w holds allocated for the caller.
 */
void bl_adopt(struct bl_ctx *c, uint32_t u, uint64_t w, unsigned held);
/*
 * [frame, frame + 2^k) allocated by CAS if every frame of it is free:
 * BUDDY_OK, BUDDY_EBUSY (a frame of it is allocated: H or T), or
 * BU_NOT_LOWER (the unit is at the core).
 */
int bl_alloc_at(struct bl_ctx *c, uint32_t frame, unsigned k);
/*
 * A run's pieces inside one unit, freed by one CAS (bu_free_run): the
 * error of the first bad piece, or BU_NOT_LOWER, and nothing changed;
 * or BUDDY_OK with the CAS's words. Inside the caller's section, which
 * then calls bl_free_run_done() (the unit given back or listed).
 */
int bl_free_run_cas(struct bl_ctx *c, uint32_t frame, unsigned n, uint64_t *old,
		    uint64_t *nw);
void bl_free_run_done(struct bl_ctx *c, uint32_t frame, unsigned n,
		      uint64_t nw);
/*
 * The first unit's part of a run that spans two units (frames [frame,
 * frame + n) up to the unit's end, frame not a unit's first): every piece
 * checked as bu_free_run() would and claimed by one CAS (each frame's
 * code 3, BU_CODE_CLAIM), neither free nor allocated: BUDDY_OK, or the
 * first bad piece's error (a claimed piece: EDOUBLE) or BU_NOT_LOWER,
 * nothing changed. The claimed frames are the caller's alone until
 * bl_free_run_settle(): commit = true frees them (the word maybe 0, then
 * bl_free_run_done()'s giving back or listing), false gives them back as
 * they were. Neither can fail. Inside the caller's section.
 */
int bl_free_run_claim(struct bl_ctx *c, uint32_t frame, unsigned n,
		      uint64_t *old);
void bl_free_run_settle(struct bl_ctx *c, uint32_t frame, unsigned n,
			uint64_t old, bool commit);
#endif

/*
 * At quiescence: 0, or the number of the lower-level invariant broken
 * (1: a word not well formed; 3: pstk names a class whose stack does not
 * hold the unit, or a stack entry without pstk, or pstk BL_PRING and not
 * exactly one ring slot naming the unit, or a slot naming a unit whose
 * pstk is not BL_PRING; 4: a unit with a free
 * frame neither reserved-and-named nor listed); *unit the unit.
 */
int bl_zone_check(struct bl_zone *z, uint32_t *unit);

#endif /* BUDDY_LOWER_H */
