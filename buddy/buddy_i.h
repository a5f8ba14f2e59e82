/*
 * buddy_i.h: the internals shared by buddy.c (zone set-up, statistics,
 * checks), buddy_core.c (the lock-free stacks, split and merge) and
 * buddy_cache.c (the per-CPU caches). Not for users: they include buddy.h.
 *
 * The per-frame state word (16 bits) is the authority on what a frame is.
 * It is changed only by CAS (or, where one owner has it exclusively, by a
 * store; see buddy_cache.c) and its transitions are pure functions below:
 *
 *   bits 0-2   kind: FREE, ALLOC, CACHED, BUSY (heads) or TAIL
 *   bits 3-7   order of the block, for a head
 *   bits 8-12  stk: 0, or j + 1 while the frame's link is held by stack j
 *              (or by the one call that popped it from, or is pushing it
 *              onto, stack j): invariant B3 of docs/design.md
 *   bit  13    mark, used only by buddy_zone_check() at quiescence
 *
 * Over units (BUDDY_CORE_SHIFT 5, docs/design.md 2.7) the word is per unit
 * and the order field holds the *unit* order (the frame order minus 5,
 * 0-15, 4 bits; a tail's field is 0): kind 0-2, unit order 3-6, stk
 * 7-11, mark 12, bits 13-15 unused (version 3's pstk is an array of its
 * own, buddy_lower.h: docs/design.md 2.7, "Partial stacks").
 * bst_make() and bst_order() take and give frame orders either way.
 */
#ifndef BUDDY_I_H
#define BUDDY_I_H

#include "buddy.h"
#include "lf_spin.h"

enum buddy_kind {
	BK_NONE = 0, /* never stored */
	BK_FREE = BUDDY_FRAME_FREE,
	BK_ALLOC = BUDDY_FRAME_ALLOC,
	BK_CACHED = BUDDY_FRAME_CACHED,
	BK_TAIL = BUDDY_FRAME_TAIL,
	BK_BUSY = BUDDY_FRAME_BUSY,
	/*
	 * Version 3, over units only: the unit is the lower level's (its
	 * frames' blocks live in the unit's word, docs/design.md 2.7); a
	 * head of unit order 0, allocated from the core's point of view.
	 */
	BK_LOWER = 6,
};

#ifndef BUDDY_CORE_SHIFT
#define BUDDY_CORE_SHIFT 0 /* log2 of the frames per core index (below) */
#endif
/* Bits of the order field: the core's orders (BUDDY_CORE_SHIFT to max). */
#define BST_ORDER_BITS (BUDDY_CORE_SHIFT == 0 ? 5 : 4)
#define BST_KIND_MASK 0x0007u
#define BST_ORDER_SHIFT 3
#define BST_ORDER_MASK (((1u << BST_ORDER_BITS) - 1) << BST_ORDER_SHIFT)
#define BST_STK_SHIFT (BST_ORDER_SHIFT + BST_ORDER_BITS)
#define BST_STK_MASK (0x1fu << BST_STK_SHIFT)
#define BST_MARK (0x20u << BST_STK_SHIFT)

_Static_assert(BUDDY_ORDERS + 1 <= 31, "stk field holds order + 1");
_Static_assert(BUDDY_MAX_ORDER - BUDDY_CORE_SHIFT < 1u << BST_ORDER_BITS,
	       "order field holds the core's orders");
_Static_assert(BUDDY_CORE_SHIFT == 0 || BUDDY_CORE_SHIFT == 5,
	       "frames, or units of 32 frames");
#if BUDDY_CORE_SHIFT > 0
/* Version 3: the lower level lives in the zone (struct buddy_zone). */
#include "buddy_lower.h"
_Static_assert(BUDDY_CORE_SHIFT == BU_ORDER, "a core index is a unit");
#endif
_Static_assert(sizeof(lf_atomic_u16) == 2, "the state word is 16 bits");

/* The order field of frame order o (0 for a tail's order 0). */
static inline unsigned bst_ofield(unsigned o)
{
#if BUDDY_CORE_SHIFT == 0
	return o;
#else
	return o < BUDDY_CORE_SHIFT ? 0 : o - BUDDY_CORE_SHIFT;
#endif
}
static inline uint16_t bst_make(unsigned kind, unsigned order, unsigned stk)
{
	return (uint16_t)(kind | bst_ofield(order) << BST_ORDER_SHIFT |
			  stk << BST_STK_SHIFT);
}
static inline unsigned bst_kind(uint16_t s)
{
	return s & BST_KIND_MASK;
}
/* The frame order of a head (of a tail: 0 at shift 0, else meaningless). */
static inline unsigned bst_order(uint16_t s)
{
	return ((s & BST_ORDER_MASK) >> BST_ORDER_SHIFT) + BUDDY_CORE_SHIFT;
}
static inline unsigned bst_stk(uint16_t s)
{
	return (s & BST_STK_MASK) >> BST_STK_SHIFT;
}
/* A head of this kind, any order: FREE, ALLOC, CACHED or BUSY. */
static inline bool bst_is_head(uint16_t s)
{
	unsigned k = bst_kind(s);
	return k != BK_TAIL && k != BK_NONE;
}
/* The same word with kind and order replaced; stk and mark kept. */
static inline uint16_t bst_with(uint16_t s, unsigned kind, unsigned order)
{
	return (uint16_t)((s & (BST_STK_MASK | BST_MARK)) |
			  bst_make(kind, order, 0));
}
/* The same word with stk replaced. */
static inline uint16_t bst_with_stk(uint16_t s, unsigned stk)
{
	return (uint16_t)((s & ~BST_STK_MASK) | stk << BST_STK_SHIFT);
}
/*
 * Kind and frame order both, in one compare (the global path's hottest
 * test): bst_kind(s) == kind && bst_order(s) == order. Over units, an
 * order below the unit's matches nothing: order - BUDDY_CORE_SHIFT wraps,
 * and the right side has bits above the word's 16 (an explicit test
 * would tell the compiler the order is >= 5 after it, and the cache
 * path, dead at shift 5, would then warn of its arrays' bounds).
 */
static inline bool bst_is(uint16_t s, unsigned kind, unsigned order)
{
	return (s & (BST_KIND_MASK | BST_ORDER_MASK)) ==
	       (kind | (order - BUDDY_CORE_SHIFT) << BST_ORDER_SHIFT);
}

/* A region: frames [pfn, pfn + n) at indices [idx, idx + n). (i) */
struct buddy_rgn {
	uint64_t pfn;
	uint32_t idx;
	uint32_t n;
};

/* One lock-free stack per order, each on its own cache line. */
struct buddy_stack_line {
	struct lf_stack s; /* (a) */
} LF_CACHE_ALIGNED;

/* Per-context counters: written only by the context's user, read by stats. */
enum buddy_ctr {
	BC_ALLOCS,
	BC_FREES,
	BC_FAILED,
	BC_MERGES,
	BC_SPLITS,
	BC_STALE,
	BC_MOVED,
	BC_REFILLS,
	BC_DRAINS,
	BC_SWEEPS,
	BC_REJECTED, /* + -err: BC_REJECTED + BUDDY_NERR entries */
	BC_COUNT = BC_REJECTED + BUDDY_NERR,
};

/*
 * Field tags (CONTRIBUTING.md has the legend): (i) set at init, then
 * read-only; (a) atomic, any context;
 * (o) written only by the thread using this context, read by others
 * (relaxed, a snapshot, unless said otherwise); (l) the cache: written by
 * the owner inside buddy_own_enter()/exit or by a context holding the
 * cache lock (buddy_cache.c says how the two exclude each other).
 */
/* Blocks to push, per order: first..last chained through their links. */
struct buddy_chain {
	uint32_t first[BUDDY_ORDERS], last[BUDDY_ORDERS];
};

/*
 * The per-CPU caches (own, count, asym, lock, slot: buddy_cache.c) exist at
 * both shifts: version 2 caches orders 0 to BUDDY_CACHE_ORDERS - 1 as CACHED
 * heads of the core (its state words); version 3 (over units) caches orders
 * 0 to BU_MAX_ORDER as blocks that stay allocated in their unit word, with
 * a bit in the unit's cached mask (buddy_lower.h, "The cached mask";
 * docs/design.md 2.7). One exclusion, drain and ENOMEM machinery serves
 * both; only the transitions "a block becomes cached" and "a cached block
 * is released" differ (buddy_cache.c).
 */
#define BUDDY_HAS_CACHE 1
#if BUDDY_CORE_SHIFT == 0
#define BUDDY_CC_ORDERS BUDDY_CACHE_ORDERS
#define BUDDY_CC_SLOTS BUDDY_CACHE_SLOTS
#define BUDDY_CC_BATCH BUDDY_CACHE_BATCH
#define BUDDY_CC_CAP(o) BUDDY_CC_SLOTS
#define BUDDY_CC_BASE(o) ((o)*BUDDY_CC_SLOTS)
#define BUDDY_CC_TOTAL (BUDDY_CC_ORDERS * BUDDY_CC_SLOTS)
#else
#define BUDDY_CC_ORDERS 5 /* orders 0-4: every order below a unit */
/*
 * Slots of order 0 and of each order 1-4 (v3-status item 28's N = 16;
 * order 0 64 since item 53, as version 2's: a batch of 64 order-0 blocks
 * freed and taken again stays in the cache, no refill and no drain).
 */
#define BUDDY_CC_SLOTS0 64
#define BUDDY_CC_SLOTS 16
#define BUDDY_CC_BATCH 8 /* a full order drains its oldest 8 */
/* A refill's blocks, the one handed out aside: order 0's and the others'. */
#define BUDDY_CC_REFILL0 31
#define BUDDY_CC_REFILL 7
#define BUDDY_CC_CAP(o) ((o) == 0 ? BUDDY_CC_SLOTS0 : BUDDY_CC_SLOTS)
#define BUDDY_CC_BASE(o)                                                       \
	((o) == 0 ? 0u : BUDDY_CC_SLOTS0 + ((o)-1u) * BUDDY_CC_SLOTS)
#define BUDDY_CC_TOTAL                                                         \
	(BUDDY_CC_SLOTS0 + (BUDDY_CC_ORDERS - 1) * BUDDY_CC_SLOTS)
#endif

struct buddy_cpu {
	/* The owner's line: written on its fast path, by it alone. */
#if BUDDY_HAS_CACHE
	lf_atomic_u32 own; /* (o) 1 while the owner is in its cache */
	lf_atomic_u32 count[BUDDY_CC_ORDERS]; /* (l) blocks in slot[o] */
#endif
	struct buddy_zone *zone; /* (i) */
	uint32_t id;             /* (i) */
#if BUDDY_CORE_SHIFT > 0
	/*
	 * (i) This CPU's lower context, &zone->lower.ctx[id] (set by
	 * bl_zone_init()): the per-CPU path reaches it in one load, not
	 * through the zone (docs/v3-status.md item 18).
	 */
	struct bl_ctx *lower;
#endif
#if BUDDY_HAS_CACHE
	bool asym; /* (i) the zone's asymmetric mode (buddy_cache.c) */
#endif
	bool nocache; /* (o) owner's setting */
	/*
	 * (o) In flight: the low BUDDY_BUSY_BITS bits are the depth of the
	 * sections in which this context holds blocks BUSY or entries popped
	 * from a stack (a split, a merge, a carve, a sweep, a drain), memory
	 * that comes back free; the bits above count the section boundaries
	 * crossed (mod 2^24). Another context that finds no free block
	 * fails only over a window in which no context was in flight and
	 * none of these words changed (buddy_take_global).
	 */
	lf_atomic_u32 busy;
	/*
	 * (o) spare[k]: a free block of order k this context keeps at hand
	 * (BUDDY_SPARE_NONE if none): a hint; the block's state word is the
	 * truth. A spare is findable without a stack (B4): a publish that
	 * finds the block's link free (stk 0) and this slot open (empty, or
	 * naming a block no longer FREE(k)) stores the block here instead of
	 * pushing it, so that this context's next allocation of order k
	 * claims it where it is (one CAS, no stack touched), and a merge
	 * that claims it as a buddy leaves no stale entry. Any context may
	 * claim a spare (a failing pass looks at every context's,
	 * buddy_take_once()); only the owner writes the slot, always inside
	 * an in-flight section when it names a block, and empties it of a
	 * FREE(k) block only by merging or pushing that block (B4, B8).
	 * Deferred frees (B8) go here at any order, other publishes below
	 * BUDDY_SPARE_ORDERS. spare_mask: bit k set while spare[k] is not
	 * NONE (the same writer; others read it relaxed, as a hint).
	 */
	lf_atomic_u32 spare[BUDDY_ORDERS];
	lf_atomic_u32 spare_mask;
	/*
	 * (o, plain: only the owner uses it) recent[k]: the block of order k
	 * this context last allocated outside its cache. Only a free of that
	 * block defers (a short-lived block, likely taken again at once);
	 * any other free merges at once, so the choice of blocks, and with
	 * it fragmentation, stays that of an eager buddy.
	 */
	uint32_t recent[BUDDY_ORDERS];
	/*
	 * (o) Written only by the thread using this context, with relaxed
	 * load + store (no RMW); buddy_zone_stats() sums them with relaxed
	 * loads. free_delta[k] counts the FREE heads of order k this context
	 * created minus those it claimed (mod 2^64): their sum over all
	 * contexts is the number of free blocks of order k at quiescence.
	 */
	lf_atomic_u64 free_delta[BUDDY_ORDERS];
	lf_atomic_u64 ctr[BC_COUNT];
	/*
	 * (o, plain) While a drain releases a batch of blocks: the blocks
	 * its publishes would push, chained per order, pushed by the drain
	 * in one CAS per order before its section ends (buddy_cache.c);
	 * NULL otherwise.
	 */
	struct buddy_chain *chain;
#if BUDDY_HAS_CACHE
	/* The cache lock, on a line of its own: drainers write it. */
	struct lf_spin lock LF_CACHE_ALIGNED; /* (a) */

	/*
	 * (l) The cached blocks of each order: a LIFO of frame indices, order
	 * o's BUDDY_CC_CAP(o) slots from slot[BUDDY_CC_BASE(o)] on
	 * (buddy_slots()). Plain memory: the cache's exclusion orders every
	 * access (so that ThreadSanitizer reports a broken exclusion as a race
	 * on it).
	 */
#if BUDDY_CORE_SHIFT == 0
	uint32_t slot[BUDDY_CC_ORDERS][BUDDY_CC_SLOTS] LF_CACHE_ALIGNED;
#else
	uint32_t slot[BUDDY_CC_TOTAL] LF_CACHE_ALIGNED;
#endif
#endif
} LF_CACHE_ALIGNED;

#if BUDDY_HAS_CACHE
/* Order o's slots in c's cache (BUDDY_CC_CAP(o) of them). */
static inline uint32_t *buddy_slots(struct buddy_cpu *c, unsigned o)
{
#if BUDDY_CORE_SHIFT == 0
	return c->slot[o];
#else
	return &c->slot[BUDDY_CC_BASE(o)];
#endif
}
#endif

struct buddy_zone {
	struct buddy_stack_line stacks[BUDDY_ORDERS]; /* (a) */
	struct buddy_rgn rgn[BUDDY_MAX_REGIONS];      /* (i) */
	uint32_t nrgn;                                /* (i) */
	uint32_t ncpus;                               /* (i) */
	bool asym;           /* (i) heavy barrier available (buddy_cache.c) */
	uint64_t nframes;    /* (i) managed frames, the regions' sum */
	uint64_t nidx;       /* (i) length of st[] and link[]: with padding */
	lf_atomic_u16 *st;   /* (a) state word per frame */
	lf_atomic_u32 *link; /* (a) stack link per frame */
	struct buddy_cpu *cpus; /* (i) ncpus contexts */
#if BUDDY_CORE_SHIFT > 0
	/*
	 * Version 3's lower level (buddy_lower.h): its unit words, partial
	 * links and pstk per core index, and a context per CPU (context i
	 * uses cpus[i] for its core sections), in the metadata area after
	 * the core's arrays (buddy.c).
	 */
	struct bl_zone lower;
#endif
} LF_CACHE_ALIGNED;

/*
 * A slow path kept out of its caller, so that the fast one stays lean; a
 * step of the global path's common case inlined into its caller (the call
 * and its saved registers were a tenth of an alloc + free pair's
 * instructions: docs/design.md 2.6).
 */
#define BUDDY_NOINLINE __attribute__((noinline))
#define BUDDY_INLINE inline __attribute__((always_inline))

#define BUDDY_NOLIMIT UINT64_MAX /* no address limit (in frames) */
#define BUDDY_SPARE_NONE UINT32_MAX
/*
 * Orders below this keep a split's upper halves and an eager free's block
 * in the context's spare slot (buddy_core.c); larger blocks go on the
 * stacks, where other contexts find them without a scan.
 */
#define BUDDY_SPARE_ORDERS 6

/*
 * Frames per line of state words. Each region's first index is congruent
 * to its first pfn modulo this, so a block aligned to it in pfn (the per-CPU
 * caches carve such blocks) owns whole lines of state words (no two CPUs'
 * caches write one line).
 */
#define BUDDY_LINE_FRAMES (LF_CACHELINE / 2)
#define BUDDY_LINE_ORDER 5
_Static_assert(BUDDY_LINE_FRAMES == 1 << BUDDY_LINE_ORDER, "line order");

/*
 * The core's arrays (st[], link[]) have one entry per *core index*: a
 * frame index x (a frame's place in the regions' index layout) has the
 * core index x >> BUDDY_CORE_SHIFT. Version 2 keeps an entry per frame
 * (shift 0); version 3 runs the core over units of 32 frames (shift 5,
 * docs/design.md 2.7), where every core block is unit-aligned. The core's
 * code keeps frame indices and frame orders; only these helpers index
 * the arrays, and the stacks (and the chains pushed onto them) hold core
 * indices: buddy_cx() before a push or a link store, buddy_fx() after a
 * pop or a link load.
 */
/*
 * The core's granule: blocks below it are not the core's (version 3's
 * lower level keeps them), nor are the partial granules at a region's
 * ends: over units the core tiles a region's whole units only, and its
 * edge units are the lower level's for ever (buddy_rgn_edge_units()).
 */
#define BUDDY_CORE_FRAMES (1u << BUDDY_CORE_SHIFT)
#define BUDDY_CORE_BYTES ((uint64_t)BUDDY_FRAME_SIZE << BUDDY_CORE_SHIFT)
/* Is order o below the core's granule? (o <= BUDDY_MAX_ORDER) */
static inline bool buddy_below_core(unsigned o)
{
	return ((BUDDY_CORE_FRAMES - 1) >> o) != 0;
}
_Static_assert(BUDDY_CORE_SHIFT <= BUDDY_LINE_ORDER, "a core index per line");
/* The core index of frame index x; LF_STACK_NIL stays LF_STACK_NIL. */
static inline uint32_t buddy_cx(uint32_t x)
{
	return x == LF_STACK_NIL ? LF_STACK_NIL : x >> BUDDY_CORE_SHIFT;
}
/* The frame index of core index u; LF_STACK_NIL stays LF_STACK_NIL. */
static inline uint32_t buddy_fx(uint32_t u)
{
	return u == LF_STACK_NIL ? LF_STACK_NIL : u << BUDDY_CORE_SHIFT;
}
/* The core's entries of frame index x. */
static inline lf_atomic_u16 *buddy_st(const struct buddy_zone *z, uint32_t x)
{
	return &z->st[buddy_cx(x)];
}
static inline lf_atomic_u32 *buddy_link(const struct buddy_zone *z, uint32_t x)
{
	return &z->link[buddy_cx(x)];
}
/* Core indices of nidx frame indices: the arrays' length. */
static inline uint64_t buddy_ncx(uint64_t nidx)
{
	return (nidx + ((uint64_t)1 << BUDDY_CORE_SHIFT) - 1) >>
	       BUDDY_CORE_SHIFT;
}

/*
 * Region r's whole core granules: frame indices [*x, *end) (every frame at
 * shift 0; over units, the units wholly inside r: the core's blocks tile
 * exactly those, B1). Empty (*x >= *end) for a region inside one unit.
 */
static inline void buddy_rgn_whole(const struct buddy_rgn *r, uint64_t *x,
				   uint64_t *end)
{
	uint64_t g = BUDDY_CORE_FRAMES;
	*x = ((uint64_t)r->idx + g - 1) & ~(g - 1);
	*end = ((uint64_t)r->idx + r->n) & ~(g - 1);
}

#if BUDDY_CORE_SHIFT > 0
/*
 * Region r's edge units (docs/design.md 2.7, "The word"), in u[]: the
 * unit of its first frame if r starts inside it, that of its last frame
 * if r ends inside it; one unit for a region inside one. Returns how many
 * (0-2). Frames [buddy_rgn_edge_lo(), buddy_rgn_edge_hi()) of such a unit
 * are r's; the others are padding (no other region has a frame in it:
 * the index layout), allocated heads of order 0 in its word for ever.
 */
static inline unsigned buddy_rgn_edge_units(const struct buddy_rgn *r,
					    uint32_t u[2])
{
	uint32_t first = r->idx, last = r->idx + r->n - 1;
	uint32_t m = BUDDY_CORE_FRAMES - 1;
	unsigned n = 0;
	if (first & m)
		u[n++] = first >> BUDDY_CORE_SHIFT;
	if (((last + 1) & m) && (n == 0 || u[0] != last >> BUDDY_CORE_SHIFT))
		u[n++] = last >> BUDDY_CORE_SHIFT;
	return n;
}
static inline unsigned buddy_rgn_edge_lo(const struct buddy_rgn *r, uint32_t u)
{
	uint32_t base = u << BUDDY_CORE_SHIFT;
	return r->idx > base ? r->idx - base : 0;
}
static inline unsigned buddy_rgn_edge_hi(const struct buddy_rgn *r, uint32_t u)
{
	uint32_t base = u << BUDDY_CORE_SHIFT, end = r->idx + r->n;
	return end < base + BUDDY_CORE_FRAMES ? end - base : BUDDY_CORE_FRAMES;
}
#endif

/* Counters of a context: relaxed load + store by its only writer. */
static inline void buddy_ctr_add(struct buddy_cpu *c, enum buddy_ctr i,
				 uint64_t v)
{
	lf_atomic_u64 *a = &c->ctr[i];
	/* Relaxed: only this context's user writes it; stats read it. */
	lf_store_u64(a, lf_load_u64(a, LF_RELAXED) + v, LF_RELAXED);
}
static inline void buddy_free_delta(struct buddy_cpu *c, unsigned order,
				    int64_t v)
{
	lf_atomic_u64 *a = &c->free_delta[order];
	/* Relaxed: as buddy_ctr_add(). */
	lf_store_u64(a, lf_load_u64(a, LF_RELAXED) + (uint64_t)v, LF_RELAXED);
}
#define BUDDY_BUSY_BITS 8
#define BUDDY_BUSY_DEPTH ((1u << BUDDY_BUSY_BITS) - 1)
/* Enter (d = 1) or leave (d = -1) an in-flight section. */
static inline void buddy_busy(struct buddy_cpu *c, int d)
{
	/* Relaxed: only this context's user writes it. */
	uint32_t w = lf_load_u32(&c->busy, LF_RELAXED);
	w = (w + (1u << BUDDY_BUSY_BITS)) +
	    (d > 0 ? 1u : (uint32_t)-1); /* the depth never wraps */
	/*
	 * Release: leaving, the blocks given back come before it. Pairs
	 * with the acquire loads of buddy_others_flight(). Entering, it
	 * orders nothing after it: the pops and claims of the section carry
	 * it, release RMWs (acq_rel CASes, lf_stack.c S5 for the pops) read
	 * with acquire by a failing pass (buddy_take_global_held()).
	 */
	lf_store_u32(&c->busy, w, LF_RELEASE);
}
/*
 * buddy_busy(c, 1) returning the word it stored, and buddy_busy(c, -1)
 * from that word, for a section in which nothing else enters or leaves
 * one (the per-CPU free of version 3, buddy_cache.c): one load for the
 * two, the same stores and orders as buddy_busy().
 */
static inline uint32_t buddy_busy_enter(struct buddy_cpu *c)
{
	/* Relaxed: only this context's user writes it. */
	uint32_t w =
		lf_load_u32(&c->busy, LF_RELAXED) + (1u << BUDDY_BUSY_BITS) + 1;
	/* Release: as buddy_busy() entering. */
	lf_store_u32(&c->busy, w, LF_RELEASE);
	return w;
}
static inline void buddy_busy_leave_from(struct buddy_cpu *c, uint32_t w)
{
	/* Release: as buddy_busy() leaving; pairs with the same loads. */
	lf_store_u32(&c->busy, w + (1u << BUDDY_BUSY_BITS) - 1, LF_RELEASE);
}
/* Count a rejected call and return its error code. */
static inline int buddy_reject(struct buddy_cpu *c, int err)
{
	buddy_ctr_add(c, BC_REJECTED, 1);
	buddy_ctr_add(c, (enum buddy_ctr)(BC_REJECTED + -err), 1);
	return err;
}

/* buddy.c: the region searches (binary) behind the inline lookups. */
const struct buddy_rgn *buddy_rgn_search_pfn(const struct buddy_zone *z,
					     uint64_t pfn);
const struct buddy_rgn *buddy_rgn_search_idx(const struct buddy_zone *z,
					     uint32_t idx);
/* The region holding pfn, or NULL; no search in a one-region zone. */
static inline const struct buddy_rgn *
buddy_rgn_of_pfn(const struct buddy_zone *z, uint64_t pfn)
{
	if (LF_LIKELY(z->nrgn == 1))
		return pfn - z->rgn[0].pfn < z->rgn[0].n ? &z->rgn[0] : NULL;
	return buddy_rgn_search_pfn(z, pfn);
}
/* The region of index idx (which is in one). */
static inline const struct buddy_rgn *
buddy_rgn_of_idx(const struct buddy_zone *z, uint32_t idx)
{
	if (LF_LIKELY(z->nrgn == 1))
		return &z->rgn[0];
	return buddy_rgn_search_idx(z, idx);
}
static inline uint64_t buddy_rgn_addr(const struct buddy_rgn *r, uint32_t x)
{
	return (r->pfn + (x - r->idx)) << BUDDY_FRAME_SHIFT;
}
static inline uint32_t buddy_addr_idx(const struct buddy_rgn *r, uint64_t a)
{
	return r->idx + (uint32_t)((a >> BUDDY_FRAME_SHIFT) - r->pfn);
}
static inline uint64_t buddy_idx_addr(const struct buddy_zone *z, uint32_t x)
{
	return buddy_rgn_addr(buddy_rgn_of_idx(z, x), x);
}
/* Check addr and order of a block: the region, or an error code. */
static inline int buddy_addr_check(const struct buddy_zone *z, uint64_t addr,
				   unsigned order, const struct buddy_rgn **rp)
{
	if (order > BUDDY_MAX_ORDER)
		return BUDDY_EINVAL;
	uint64_t pfn = addr >> BUDDY_FRAME_SHIFT;
	const struct buddy_rgn *r = buddy_rgn_of_pfn(z, pfn);
	if (r == NULL)
		return BUDDY_ERANGE;
	/* Frame-aligned and aligned to the order, in one test. */
	if (addr & ((BUDDY_FRAME_SIZE << order) - 1))
		return BUDDY_EALIGN;
	if (pfn - r->pfn + ((uint64_t)1 << order) > r->n)
		return BUDDY_ERANGE;
	*rp = r;
	return BUDDY_OK;
}

/*
 * buddy_core.c: the policy-free lock-free core. It never calls the layers
 * above it (buddy_cache.c, buddy_place.c): "nothing free in the stacks,
 * but caches may hold memory" goes up as a result, and the per-CPU layer
 * drains and retries (buddy_take_global()).
 */
void buddy_st_set(struct buddy_zone *z, uint32_t x, unsigned kind,
		  unsigned order);
int buddy_free_claim(struct buddy_zone *z, const struct buddy_rgn *r,
		     uint32_t x, unsigned order, unsigned kind);
void buddy_free_merge(struct buddy_cpu *c, const struct buddy_rgn *r,
		      uint32_t x, unsigned k);
/*
 * Free allocated block x of order k at once, merging it with free buddies
 * (B6), or return why not, changing nothing. When its buddy is not free,
 * one seq_cst CAS ALLOC -> FREE claims and publishes it, then the buddy is
 * rechecked as after any publish.
 */
int buddy_free_eager(struct buddy_cpu *c, const struct buddy_rgn *r, uint32_t x,
		     unsigned k);
void buddy_publish_half(struct buddy_cpu *c, uint32_t u, unsigned k);
/* Free n blocks of order o, ours with stk == 0, merging those that are
 * buddies of each other first (buddy_core.c); sorts xs[]. */
void buddy_free_batch(struct buddy_cpu *c, uint32_t *xs, uint32_t n,
		      unsigned o);
/*
 * The core's half of an exact ENOMEM. buddy_others_flight(): the other
 * contexts' busy words summed (section boundaries crossed), or UINT64_MAX
 * if one is in flight now; two equal sums mean nobody entered a section in
 * between. buddy_take_once(): one pass over the stacks from order k (a
 * sweep first, inside the caller's window, if asked), the block claimed
 * and split to k (BUSY(k), ours, its section open) or LF_STACK_NIL; *moved
 * if the pass re-filed an entry to another stack.
 */
uint64_t buddy_others_flight(const struct buddy_cpu *c);
uint32_t buddy_take_once(struct buddy_cpu *c, unsigned k, uint64_t limit,
			 bool sweep, unsigned *op, bool *moved);
/*
 * A failing pass under a limit after the first (buddy_core.c): no stack
 * popped, the state words of the heads below the limit looked at, a free
 * block that fits claimed where it is and split to k (BUSY(k), ours, its
 * section open) or LF_STACK_NIL.
 */
uint32_t buddy_take_look(struct buddy_cpu *c, unsigned k, uint64_t limit,
			 unsigned *op);
uint32_t buddy_take(struct buddy_cpu *c, unsigned k, unsigned max,
		    uint64_t limit, unsigned *op);
bool buddy_pop_take(struct buddy_cpu *c, uint32_t x, unsigned j, unsigned k,
		    unsigned *op);
uint32_t buddy_take_stack(struct buddy_cpu *c, unsigned j, unsigned k,
			  uint64_t limit, unsigned *op);
void buddy_split_low(struct buddy_cpu *c, uint32_t x, unsigned o, unsigned k);

/* Free x, BUSY(k) and ours, without merging it (B8, buddy_core.c). */
void buddy_free_defer(struct buddy_cpu *c, uint32_t x, unsigned k);
/*
 * Claim a block of order k from this context's spares, k's if it is still
 * free at that order, else the smallest larger one split down to k while
 * no stack holds a smaller block (its halves go into the slots below):
 * kind (BUSY or ALLOC) of order k, ours; LF_STACK_NIL if none. An
 * allocation tries it before anything else, so an alloc + free pair on
 * the global path touches only the blocks' own state words, not a shared
 * stack head (a slot empties when its block is taken).
 */
uint32_t buddy_take_spare(struct buddy_cpu *c, unsigned k, unsigned kind);
/* Merge every context's spare blocks with free buddies: true if any. */
bool buddy_zone_undefer(struct buddy_cpu *c);

#if BUDDY_CORE_SHIFT > 0
/*
 * Version 3's transitions of a unit between the core and the lower level
 * (buddy_core.c; docs/design.md 2.7, "Core <-> lower"). buddy_unit_take():
 * a unit of the core (order BUDDY_CORE_SHIFT) claimed and made LOWER, in
 * *xp; on success the caller is inside the take's in-flight section and
 * leaves it (buddy_busy(c, -1)) once the unit is named. buddy_unit_give():
 * LOWER -> BUSY, then the unit freed at the core, merging (B6); the caller
 * is inside a section entered before the CAS that gave the unit up.
 */
int buddy_unit_take(struct buddy_cpu *c, uint32_t *xp);
/* buddy_unit_take() of a unit that fits limit (buddy_fits(): pfn) at order
 * BUDDY_CORE_SHIFT. */
int buddy_unit_take_below(struct buddy_cpu *c, uint64_t limit, uint32_t *xp);
void buddy_unit_give(struct buddy_cpu *c, uint32_t x);
/*
 * 2^lo units at once (a block of unit order lo), each made LOWER, in
 * *xp (the first), split from a free block of unit order lo..hi (hi = lo:
 * a whole free block only, no split): one pass over this context's
 * spare slots and the core's stacks, no wait (the lower level falls
 * back to buddy_unit_take()); BUDDY_ENOMEM if it found none. On success
 * the caller is inside the take's section, as above.
 */
int buddy_unit_take_line(struct buddy_cpu *c, unsigned lo, unsigned hi,
			 uint32_t *xp);
/*
 * Why a free of order < 5 at frame x, whose unit is not lower (word 0),
 * is refused, from the core's words: EORDER (x heads a core block),
 * ETAIL (inside an allocated one) or EDOUBLE (free).
 */
int buddy_free_why_small(struct buddy_zone *z, const struct buddy_rgn *r,
			 uint32_t x);
/* A snapshot, no section: may the core hold a free unit? */
bool buddy_unit_has(const struct buddy_cpu *c);
/*
 * buddy.c: is unit u an edge unit (buddy_rgn_edge_units())? Then its
 * region's frames are [*lo, *hi). A search of the regions (a slow path:
 * drain_all's reclaim).
 */
bool buddy_unit_edge(const struct buddy_zone *z, uint32_t u, unsigned *lo,
		     unsigned *hi);
/* buddy.c: the lower level's free blocks added to *out (a word scan). */
void buddy_lower_stats(const struct buddy_zone *z, struct buddy_stats *out);
/* The lower level's context of core context c (the same CPU). */
static inline struct bl_ctx *buddy_lower_ctx(struct buddy_cpu *c)
{
	return c->lower;
}
#endif

/* buddy_cache.c: the per-CPU layer, and the allocation loop over both. */
int buddy_take_global(struct buddy_cpu *c, unsigned k, uint64_t limit,
		      uint32_t *xp);
/* As buddy_take_global(), but on success the caller is still inside the
 * claim's in-flight section and leaves it with buddy_busy(c, -1). */
int buddy_take_global_held(struct buddy_cpu *c, unsigned k, uint64_t limit,
			   uint32_t *xp);
/* Drain victim's cache to the stacks: true if it held any block. */
bool buddy_cache_drain_cpu(struct buddy_cpu *c, struct buddy_cpu *victim);
/* buddy_zone_drain_all(): true if any cache held a block. */
bool buddy_zone_drain_some(struct buddy_cpu *c);

#endif /* BUDDY_I_H */
