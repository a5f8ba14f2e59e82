/*
 * buddy_locked.c: the classic binary buddy allocator (K. C. Knowlton, "A
 * fast storage allocator", CACM 8(10), 1965; D. E. Knuth, TAOCP vol. 1,
 * 2.5), under one spinlock, as Linux's zone lock and Unikraft's
 * ukallocbuddy do it. It is the sequential oracle of the model tests of the
 * lock-free buddy (buddy.h) and the baseline of the benchmarks, so it favours
 * exact, simple semantics over speed.
 *
 * Metadata, all in the caller's meta area (64-byte aligned):
 *   struct buddy_locked  the lock on its own cache line, then the region
 *                        table, the list heads per order and the counters;
 *   prev[n], next[n]     uint32_t links of the doubly linked free list of
 *                        each order, by frame index (BUDDY_LOCKED_NIL ends);
 *   state[n]             one byte per frame: kind and order (see below).
 * A frame index counts the frames of the regions one after the other;
 * blocks are aligned in physical frame number (pfn = addr >> 12), and each
 * region is its own buddy space: no block crosses a region boundary.
 *
 * Policy, which the oracle fixes: lists are LIFO (insert and take at the
 * head); init builds each list in ascending address order. Allocation takes
 * the first block of the smallest non-empty order that fits and splits it
 * keeping the lower half; free merges with the buddy while it is a free
 * block of the same order inside the same region. A run is the binary
 * decomposition of its length, each piece an allocated block of its own;
 * free_run checks and frees each piece as buddy_locked_free() would, each
 * in the region that holds it.
 *
 * Locking: one spinlock, the zone lock (lockfree/lf_spin.h: its acquire
 * pairs with the previous holder's release).
 * Everything else in the metadata is plain memory read and written only
 * under it, tagged (l); the region table is written by init only.
 *
 * Invariants (at every unlock; buddy_locked_check() returns the number of
 * the first it finds broken, see enum buddy_locked_check_err):
 *   L1  Every frame is a head (free or allocated, with an order) or a tail;
 *       the heads, walked by their orders from each region's start, tile
 *       every region exactly, each block aligned to its order in pfn.
 *   L2  The list of order k holds exactly the free heads of order k, once
 *       each, with prev/next consistent.
 *   L3  Fully coalesced: no free block has a free buddy of the same order.
 *   L4  free_blocks[k] and free_frames equal the recount of the lists.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buddy_locked.h"
#include "buddy.h"
#include "lf_atomic.h"
#include "lf_platform.h"
#include "lf_spin.h"

#define BUDDY_LOCKED_NIL UINT32_MAX

/*
 * The per-frame state byte: bits 0-4 the order (heads only), bits 5-6 the
 * kind, bit 7 the mark buddy_locked_check() uses (clear otherwise).
 */
enum buddy_locked_kind {
	BUDDY_LOCKED_TAIL = 0,  /* inside a larger block; the byte is 0 */
	BUDDY_LOCKED_FREE = 1,  /* head of a free block */
	BUDDY_LOCKED_ALLOC = 2, /* head of an allocated block */
};
#define BUDDY_LOCKED_KIND_SHIFT 5
#define BUDDY_LOCKED_ORDER_MASK 0x1fu
#define BUDDY_LOCKED_MARK 0x80u
_Static_assert(BUDDY_MAX_ORDER <= BUDDY_LOCKED_ORDER_MASK,
	       "the order must fit in bits 0-4 of the state byte");

/* What buddy_locked_check() returns, by invariant. */
enum buddy_locked_check_err {
	BUDDY_LOCKED_CHECK_LINK = 1,   /* L2: list link out of range */
	BUDDY_LOCKED_CHECK_PREV = 2,   /* L2: prev does not match the walk */
	BUDDY_LOCKED_CHECK_TWICE = 3,  /* L2: listed twice (or a cycle) */
	BUDDY_LOCKED_CHECK_LISTED = 4, /* L2: entry not a free head of k */
	BUDDY_LOCKED_CHECK_ALIGN = 5,  /* L1: entry misaligned */
	BUDDY_LOCKED_CHECK_REGION = 6, /* L1: entry crosses its region end */
	BUDDY_LOCKED_CHECK_BLOCKS = 7, /* L4: free_blocks[k] != list length */
	BUDDY_LOCKED_CHECK_FRAMES = 8, /* L4: free_frames != recount */
	BUDDY_LOCKED_CHECK_STATE = 9,  /* L1: invalid state byte */
	BUDDY_LOCKED_CHECK_TILE = 10,  /* L1: heads do not tile a region */
	BUDDY_LOCKED_CHECK_UNLISTED = 11, /* L2: free head on no list */
	BUDDY_LOCKED_CHECK_COALESCE = 12, /* L3: two free buddies */
	BUDDY_LOCKED_CHECK_HEADS = 13,    /* L2/L4: free heads != free_blocks */
};

/* A region in frames: [base, end) in pfn, its first frame index. */
struct buddy_locked_region {
	uint64_t base;
	uint64_t end;
	uint32_t first;
};

struct buddy_locked_counters {
	uint64_t free_frames;               /* (l) in free blocks */
	uint64_t free_blocks[BUDDY_ORDERS]; /* (l) list lengths */
	uint64_t allocs;                    /* (l) */
	uint64_t frees;                     /* (l) */
	uint64_t failed;                    /* (l) ENOMEM, EBUSY */
	uint64_t rejected;                  /* (l) bad input, all classes */
	uint64_t rejected_by[BUDDY_NERR];   /* (l) by -error code */
	uint64_t merges;                    /* (l) */
	uint64_t splits;                    /* (l) */
};

struct buddy_locked {
	struct lf_spin lock LF_CACHE_ALIGNED; /* (a) the zone lock */
	/* Set by init, read-only after. */
	struct buddy_locked_region region[BUDDY_MAX_REGIONS] LF_CACHE_ALIGNED;
	unsigned nregions;
	uint32_t nframes;
	uint32_t *prev;                 /* [nframes] (l) list links */
	uint32_t *next;                 /* [nframes] (l) list links */
	uint8_t *state;                 /* [nframes] (l) kind and order */
	uint32_t head[BUDDY_ORDERS];    /* (l) first free block of each order */
	struct buddy_locked_counters c; /* (l) */
};
_Static_assert(offsetof(struct buddy_locked, region) == LF_CACHELINE,
	       "the lock sits alone on the first cache line");
_Static_assert(sizeof(struct buddy_locked) % LF_CACHELINE == 0,
	       "the per-frame arrays start on a cache line");

#define BUDDY_LOCKED_FRAME_BYTES (2 * sizeof(uint32_t) + sizeof(uint8_t))

/* Pure helpers. */

static inline uint64_t buddy_locked_frames(unsigned order)
{
	return (uint64_t)1 << order;
}

static inline uint8_t buddy_locked_st(unsigned kind, unsigned order)
{
	return (uint8_t)(kind << BUDDY_LOCKED_KIND_SHIFT | order);
}

static inline unsigned buddy_locked_st_kind(uint8_t s)
{
	return (s & ~BUDDY_LOCKED_MARK) >> BUDDY_LOCKED_KIND_SHIFT;
}

static inline unsigned buddy_locked_st_order(uint8_t s)
{
	return s & BUDDY_LOCKED_ORDER_MASK;
}

/* Largest k with 2^k <= n (n > 0). */
static unsigned buddy_locked_floor_log2(uint64_t n)
{
	unsigned k = 0;
	while ((n >> k) > 1)
		k++;
	return k;
}

/* Smallest k with 2^k >= n (0 < n <= 2^BUDDY_MAX_ORDER). */
static unsigned buddy_locked_ceil_log2(uint64_t n)
{
	unsigned k = 0;
	while (buddy_locked_frames(k) < n)
		k++;
	return k;
}

static inline uint32_t buddy_locked_idx(const struct buddy_locked_region *r,
					uint64_t pfn)
{
	return r->first + (uint32_t)(pfn - r->base);
}

/* Regions. */

/* The regions are valid (see buddy.h); *frames gets their frame count. */
static bool buddy_locked_regions_ok(const struct buddy_region *rg, unsigned n,
				    uint64_t *frames)
{
	if (rg == NULL || n == 0 || n > BUDDY_MAX_REGIONS)
		return false;
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++) {
		if (rg[i].size == 0 ||
		    ((rg[i].base | rg[i].size) & (BUDDY_FRAME_SIZE - 1)) != 0)
			return false;
		if (rg[i].size > UINT64_MAX - rg[i].base)
			return false; /* the end must be representable */
		if (i > 0 && rg[i].base < rg[i - 1].base + rg[i - 1].size)
			return false; /* unsorted or overlapping */
		total += rg[i].size >> BUDDY_FRAME_SHIFT;
		if (total >= BUDDY_MAX_FRAMES)
			return false;
	}
	*frames = total;
	return true;
}

/* The region holding pfn, or NULL. */
static const struct buddy_locked_region *
buddy_locked_region_of(const struct buddy_locked *l, uint64_t pfn)
{
	unsigned lo = 0, hi = l->nregions;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct buddy_locked_region *r = &l->region[mid];
		if (pfn < r->base)
			hi = mid;
		else if (pfn >= r->end)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

/* The region holding frame index idx (idx < nframes). */
static const struct buddy_locked_region *
buddy_locked_region_of_idx(const struct buddy_locked *l, uint32_t idx)
{
	unsigned lo = 0, hi = l->nregions;
	while (hi - lo > 1) {
		unsigned mid = lo + (hi - lo) / 2;
		if (idx < l->region[mid].first)
			hi = mid;
		else
			lo = mid;
	}
	return &l->region[lo];
}

/* The free lists, all (l). */

/* Put idx at the head of list order, as a free head of that order. */
static void buddy_locked_list_push(struct buddy_locked *l, uint32_t idx,
				   unsigned order)
{
	uint32_t h = l->head[order];
	l->prev[idx] = BUDDY_LOCKED_NIL;
	l->next[idx] = h;
	if (h != BUDDY_LOCKED_NIL)
		l->prev[h] = idx;
	l->head[order] = idx;
	l->state[idx] = buddy_locked_st(BUDDY_LOCKED_FREE, order);
	l->c.free_blocks[order]++;
	l->c.free_frames += buddy_locked_frames(order);
}

/* Unlink idx from list order; its state byte is the caller's to set. */
static void buddy_locked_list_remove(struct buddy_locked *l, uint32_t idx,
				     unsigned order)
{
	uint32_t p = l->prev[idx], n = l->next[idx];
	if (p != BUDDY_LOCKED_NIL)
		l->next[p] = n;
	else
		l->head[order] = n;
	if (n != BUDDY_LOCKED_NIL)
		l->prev[n] = p;
	l->c.free_blocks[order]--;
	l->c.free_frames -= buddy_locked_frames(order);
}

/* Init only: put idx at the tail of list order (tail[] tracks the tails). */
static void buddy_locked_list_append(struct buddy_locked *l, uint32_t *tail,
				     uint32_t idx, unsigned order)
{
	uint32_t t = tail[order];
	l->prev[idx] = t;
	l->next[idx] = BUDDY_LOCKED_NIL;
	if (t != BUDDY_LOCKED_NIL)
		l->next[t] = idx;
	else
		l->head[order] = idx;
	tail[order] = idx;
	l->state[idx] = buddy_locked_st(BUDDY_LOCKED_FREE, order);
	l->c.free_blocks[order]++;
	l->c.free_frames += buddy_locked_frames(order);
}

/* Init. */

size_t buddy_locked_meta_size(const struct buddy_region *regions,
			      unsigned nregions)
{
	uint64_t frames;
	if (!buddy_locked_regions_ok(regions, nregions, &frames))
		return 0;
	uint64_t bytes =
		sizeof(struct buddy_locked) + frames * BUDDY_LOCKED_FRAME_BYTES;
#if SIZE_MAX < UINT64_MAX
	if (bytes > SIZE_MAX)
		return 0;
#endif
	return (size_t)bytes;
}

/* Every frame of r free, as the greedy maximal blocks from its start. */
static void buddy_locked_init_region(struct buddy_locked *l, uint32_t *tail,
				     const struct buddy_locked_region *r)
{
	uint64_t pfn = r->base;
	while (pfn < r->end) {
		unsigned k = BUDDY_MAX_ORDER;
		while ((pfn & (buddy_locked_frames(k) - 1)) != 0 ||
		       pfn + buddy_locked_frames(k) > r->end)
			k--;
		buddy_locked_list_append(l, tail, buddy_locked_idx(r, pfn), k);
		pfn += buddy_locked_frames(k);
	}
}

/* The region table, the arrays after the header, every frame a tail. */
static void buddy_locked_init_layout(struct buddy_locked *l,
				     const struct buddy_region *rg, unsigned n,
				     uint64_t frames)
{
	uint32_t first = 0;
	for (unsigned i = 0; i < n; i++) {
		struct buddy_locked_region *r = &l->region[i];
		r->base = rg[i].base >> BUDDY_FRAME_SHIFT;
		r->end = r->base + (rg[i].size >> BUDDY_FRAME_SHIFT);
		r->first = first;
		first += (uint32_t)(r->end - r->base);
	}
	l->nregions = n;
	l->nframes = (uint32_t)frames;
	l->prev = (uint32_t *)(void *)(l + 1);
	l->next = l->prev + frames;
	l->state = (uint8_t *)(l->next + frames);
	for (uint32_t i = 0; i < l->nframes; i++)
		l->state[i] = buddy_locked_st(BUDDY_LOCKED_TAIL, 0);
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
		l->head[k] = BUDDY_LOCKED_NIL;
}

int buddy_locked_init(struct buddy_locked **lp, void *meta, size_t meta_size,
		      const struct buddy_region *regions, unsigned nregions)
{
	uint64_t frames;
	if (lp == NULL || !buddy_locked_regions_ok(regions, nregions, &frames))
		return BUDDY_EINVAL;
	if (meta == NULL || ((uintptr_t)meta & (LF_CACHELINE - 1)) != 0)
		return BUDDY_EINVAL;
	if (meta_size < buddy_locked_meta_size(regions, nregions))
		return BUDDY_ENOSPC;
	struct buddy_locked *l = meta;
	*l = (struct buddy_locked){ .nregions = 0 };
	lf_spin_init(&l->lock);
	buddy_locked_init_layout(l, regions, nregions, frames);
	uint32_t tail[BUDDY_ORDERS];
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
		tail[k] = BUDDY_LOCKED_NIL;
	for (unsigned i = 0; i < nregions; i++)
		buddy_locked_init_region(l, tail, &l->region[i]);
	*lp = l;
	return BUDDY_OK;
}

/* Lookups and the rules of bad input, all (l). */

/* The head of the block holding pfn (in r): the tiling makes it unique. */
static uint64_t buddy_locked_block_of(const struct buddy_locked *l,
				      const struct buddy_locked_region *r,
				      uint64_t pfn)
{
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++) {
		uint64_t a = pfn & ~(buddy_locked_frames(k) - 1);
		if (a < r->base)
			break;
		uint8_t s = l->state[buddy_locked_idx(r, a)];
		if (buddy_locked_st_kind(s) != BUDDY_LOCKED_TAIL &&
		    buddy_locked_st_order(s) >= k)
			return a;
	}
	LF_ASSERT(!"a tail frame with no block around it");
	return pfn;
}

/*
 * The block [addr, addr + 2^order frames): EINVAL for the order, ERANGE if
 * addr is in no region, EALIGN, ERANGE if it crosses its region's end.
 */
static int buddy_locked_locate(const struct buddy_locked *l, uint64_t addr,
			       unsigned order,
			       const struct buddy_locked_region **rp)
{
	/*
	 * Finds the region like the lock-free buddy's lookup in buddy_i.h,
	 * written again on purpose: the locked buddy is the oracle of the
	 * model tests and shares no region code with what it checks.
	 */
	if (order > BUDDY_MAX_ORDER)
		return BUDDY_EINVAL;
	uint64_t pfn = addr >> BUDDY_FRAME_SHIFT;
	const struct buddy_locked_region *r = buddy_locked_region_of(l, pfn);
	if (r == NULL)
		return BUDDY_ERANGE;
	if ((addr & (BUDDY_FRAME_SIZE - 1)) != 0 ||
	    (pfn & (buddy_locked_frames(order) - 1)) != 0)
		return BUDDY_EALIGN;
	if (pfn + buddy_locked_frames(order) > r->end)
		return BUDDY_ERANGE;
	*rp = r;
	return BUDDY_OK;
}

/* The free rules of buddy.h, in their order; changes nothing. */
static int buddy_locked_free_check(const struct buddy_locked *l, uint64_t addr,
				   unsigned order,
				   const struct buddy_locked_region **rp)
{
	const struct buddy_locked_region *r = NULL;
	int rc = buddy_locked_locate(l, addr, order, &r);
	if (rc != BUDDY_OK)
		return rc;
	uint64_t pfn = addr >> BUDDY_FRAME_SHIFT;
	uint8_t s = l->state[buddy_locked_idx(r, pfn)];
	if (buddy_locked_st_kind(s) == BUDDY_LOCKED_TAIL) {
		uint64_t h = buddy_locked_block_of(l, r, pfn);
		s = l->state[buddy_locked_idx(r, h)];
		return buddy_locked_st_kind(s) == BUDDY_LOCKED_ALLOC
			       ? BUDDY_ETAIL
			       : BUDDY_EDOUBLE;
	}
	if (buddy_locked_st_kind(s) == BUDDY_LOCKED_FREE)
		return BUDDY_EDOUBLE;
	if (buddy_locked_st_order(s) != order)
		return BUDDY_EORDER;
	*rp = r;
	return BUDDY_OK;
}

/* Count a call's result (l). */
static void buddy_locked_tally(struct buddy_locked *l, int rc, uint64_t *ok)
{
	if (rc == BUDDY_OK) {
		(*ok)++;
	} else if (rc == BUDDY_ENOMEM || rc == BUDDY_EBUSY) {
		l->c.failed++;
	} else {
		l->c.rejected++;
		l->c.rejected_by[-rc]++;
	}
}

/* Allocation, all (l). */

/*
 * Carve [t, t + 2^o) out of the block [h, h + 2^j) just taken off its list:
 * split down, the halves that do not hold t going free; t is then allocated.
 */
static void buddy_locked_carve(struct buddy_locked *l,
			       const struct buddy_locked_region *r, uint64_t h,
			       unsigned j, uint64_t t, unsigned o)
{
	while (j > o) {
		j--;
		uint64_t half = buddy_locked_frames(j);
		if (t >= h + half) {
			buddy_locked_list_push(l, buddy_locked_idx(r, h), j);
			h += half;
		} else {
			buddy_locked_list_push(l, buddy_locked_idx(r, h + half),
					       j);
		}
		l->c.splits++;
	}
	l->state[buddy_locked_idx(r, t)] =
		buddy_locked_st(BUDDY_LOCKED_ALLOC, o);
}

/*
 * Allocate an order-order block ending at or below limit (bytes): the first
 * fitting entry of the smallest order, split keeping the lowest part.
 */
/*
 * The second-tier check (LF_DEBUG_ASSERT, on in the asan preset) of the
 * block a call just allocated or freed, O(2^order): its head says kind and
 * order, every other frame of it is a tail (L1), and a free block has no
 * free buddy of its order left (L3). buddy_locked_check() checks the whole
 * zone; this checks the block every call touches, at every call.
 */
__attribute__((unused)) static bool
buddy_locked_block_sound(const struct buddy_locked *l,
			 const struct buddy_locked_region *r, uint64_t pfn,
			 unsigned order, unsigned kind)
{
	uint32_t i = buddy_locked_idx(r, pfn);
	if (l->state[i] != buddy_locked_st(kind, order))
		return false;
	for (uint64_t k = 1; k < buddy_locked_frames(order); k++)
		if (l->state[i + k] != buddy_locked_st(BUDDY_LOCKED_TAIL, 0))
			return false;
	uint64_t b = pfn ^ buddy_locked_frames(order);
	if (kind != BUDDY_LOCKED_FREE || order == BUDDY_MAX_ORDER ||
	    b < r->base || b + buddy_locked_frames(order) > r->end)
		return true;
	return l->state[buddy_locked_idx(r, b)] !=
	       buddy_locked_st(BUDDY_LOCKED_FREE, order);
}

static int buddy_locked_take(struct buddy_locked *l, unsigned order,
			     uint64_t limit,
			     const struct buddy_locked_region **rp,
			     uint64_t *pfnp)
{
	for (unsigned j = order; j <= BUDDY_MAX_ORDER; j++) {
		for (uint32_t i = l->head[j]; i != BUDDY_LOCKED_NIL;
		     i = l->next[i]) {
			const struct buddy_locked_region *r =
				buddy_locked_region_of_idx(l, i);
			uint64_t pfn = r->base + (i - r->first);
			uint64_t end = pfn + buddy_locked_frames(order);
			if ((end << BUDDY_FRAME_SHIFT) > limit)
				continue;
			buddy_locked_list_remove(l, i, j);
			buddy_locked_carve(l, r, pfn, j, pfn, order);
			*rp = r;
			*pfnp = pfn;
			return BUDDY_OK;
		}
	}
	return BUDDY_ENOMEM;
}

static int buddy_locked_alloc_below_locked(struct buddy_locked *l,
					   unsigned order, uint64_t limit,
					   uint64_t *addr)
{
	if (order > BUDDY_MAX_ORDER || addr == NULL)
		return BUDDY_EINVAL;
	const struct buddy_locked_region *r;
	uint64_t pfn;
	int rc = buddy_locked_take(l, order, limit, &r, &pfn);
	if (rc == BUDDY_OK) {
		LF_DEBUG_ASSERT(buddy_locked_block_sound(l, r, pfn, order,
							 BUDDY_LOCKED_ALLOC));
		*addr = pfn << BUDDY_FRAME_SHIFT;
	}
	return rc;
}

int buddy_locked_alloc_below(struct buddy_locked *l, unsigned order,
			     uint64_t limit, uint64_t *addr)
{
	lf_spin_lock(&l->lock);
	int rc = buddy_locked_alloc_below_locked(l, order, limit, addr);
	buddy_locked_tally(l, rc, &l->c.allocs);
	lf_spin_unlock(&l->lock);
	return rc;
}

int buddy_locked_alloc(struct buddy_locked *l, unsigned order, uint64_t *addr)
{
	/* Every block ends below 2^64, so this is the plain allocation. */
	return buddy_locked_alloc_below(l, order, UINT64_MAX, addr);
}

static int buddy_locked_alloc_at_locked(struct buddy_locked *l, uint64_t addr,
					unsigned order)
{
	const struct buddy_locked_region *r = NULL;
	int rc = buddy_locked_locate(l, addr, order, &r);
	if (rc != BUDDY_OK)
		return rc;
	/*
	 * Fully coalesced (L3), every frame of the aligned range is free iff
	 * the block holding its first frame is free and at least as large.
	 */
	uint64_t pfn = addr >> BUDDY_FRAME_SHIFT;
	uint64_t h = buddy_locked_block_of(l, r, pfn);
	uint8_t s = l->state[buddy_locked_idx(r, h)];
	unsigned j = buddy_locked_st_order(s);
	if (buddy_locked_st_kind(s) != BUDDY_LOCKED_FREE || j < order)
		return BUDDY_EBUSY;
	buddy_locked_list_remove(l, buddy_locked_idx(r, h), j);
	buddy_locked_carve(l, r, h, j, pfn, order);
	return BUDDY_OK;
}

int buddy_locked_alloc_at(struct buddy_locked *l, uint64_t addr, unsigned order)
{
	lf_spin_lock(&l->lock);
	int rc = buddy_locked_alloc_at_locked(l, addr, order);
	buddy_locked_tally(l, rc, &l->c.allocs);
	lf_spin_unlock(&l->lock);
	return rc;
}

/*
 * Lay the run of n frames out in the allocated block [pos, pos + 2^k): the
 * binary decomposition of n from the highest bit down, each piece its own
 * allocated block; the upper halves not needed go free.
 */
static void buddy_locked_run_split(struct buddy_locked *l,
				   const struct buddy_locked_region *r,
				   uint64_t pos, unsigned k, uint64_t n)
{
	while (n != buddy_locked_frames(k)) {
		k--;
		uint64_t half = buddy_locked_frames(k);
		if (n > half) {
			l->state[buddy_locked_idx(r, pos)] =
				buddy_locked_st(BUDDY_LOCKED_ALLOC, k);
			n -= half;
			pos += half;
		} else {
			buddy_locked_list_push(
				l, buddy_locked_idx(r, pos + half), k);
		}
		l->c.splits++;
	}
	l->state[buddy_locked_idx(r, pos)] =
		buddy_locked_st(BUDDY_LOCKED_ALLOC, k);
}

static int buddy_locked_alloc_run_locked(struct buddy_locked *l,
					 uint64_t nframes, uint64_t *addr)
{
	if (nframes == 0 || nframes > buddy_locked_frames(BUDDY_MAX_ORDER) ||
	    addr == NULL)
		return BUDDY_EINVAL;
	unsigned k = buddy_locked_ceil_log2(nframes);
	const struct buddy_locked_region *r;
	uint64_t pfn;
	int rc = buddy_locked_take(l, k, UINT64_MAX, &r, &pfn);
	if (rc != BUDDY_OK)
		return rc;
	buddy_locked_run_split(l, r, pfn, k, nframes);
	*addr = pfn << BUDDY_FRAME_SHIFT;
	return BUDDY_OK;
}

int buddy_locked_alloc_run(struct buddy_locked *l, uint64_t nframes,
			   uint64_t *addr)
{
	/*
	 * Lock, the body, the count, unlock: every public call of this file
	 * is this wrapper around its _locked body.
	 */
	lf_spin_lock(&l->lock);
	int rc = buddy_locked_alloc_run_locked(l, nframes, addr);
	buddy_locked_tally(l, rc, &l->c.allocs);
	lf_spin_unlock(&l->lock);
	return rc;
}

/* Freeing, all (l). */

/* Free the allocated block [pfn, pfn + 2^order) of r and coalesce. */
static void buddy_locked_merge(struct buddy_locked *l,
			       const struct buddy_locked_region *r,
			       uint64_t pfn, unsigned order)
{
	while (order < BUDDY_MAX_ORDER) {
		uint64_t b = pfn ^ buddy_locked_frames(order);
		if (b < r->base || b + buddy_locked_frames(order) > r->end)
			break;
		uint32_t bi = buddy_locked_idx(r, b);
		if (l->state[bi] != buddy_locked_st(BUDDY_LOCKED_FREE, order))
			break;
		buddy_locked_list_remove(l, bi, order);
		/* Both become tails; the merged head is set by the push. */
		l->state[bi] = buddy_locked_st(BUDDY_LOCKED_TAIL, 0);
		l->state[buddy_locked_idx(r, pfn)] =
			buddy_locked_st(BUDDY_LOCKED_TAIL, 0);
		pfn &= ~buddy_locked_frames(order);
		order++;
		l->c.merges++;
	}
	buddy_locked_list_push(l, buddy_locked_idx(r, pfn), order);
	LF_DEBUG_ASSERT(
		buddy_locked_block_sound(l, r, pfn, order, BUDDY_LOCKED_FREE));
}

int buddy_locked_free(struct buddy_locked *l, uint64_t addr, unsigned order)
{
	lf_spin_lock(&l->lock);
	const struct buddy_locked_region *r = NULL;
	int rc = buddy_locked_free_check(l, addr, order, &r);
	if (rc == BUDDY_OK)
		buddy_locked_merge(l, r, addr >> BUDDY_FRAME_SHIFT, order);
	buddy_locked_tally(l, rc, &l->c.frees);
	lf_spin_unlock(&l->lock);
	return rc;
}

/*
 * Check (apply false) or free (apply true) each piece of the run of n
 * frames at pfn, as laid out by buddy_locked_run_split(); the first error.
 */
static int buddy_locked_run_pieces(struct buddy_locked *l, uint64_t pfn,
				   uint64_t n, bool apply)
{
	while (n != 0) {
		unsigned k = buddy_locked_floor_log2(n);
		const struct buddy_locked_region *r = NULL;
		/* A pfn whose address does not fit is in no region. */
		uint64_t addr = pfn << BUDDY_FRAME_SHIFT;
		if ((addr >> BUDDY_FRAME_SHIFT) != pfn)
			return BUDDY_ERANGE;
		int rc = buddy_locked_free_check(l, addr, k, &r);
		if (rc != BUDDY_OK)
			return rc;
		if (apply)
			buddy_locked_merge(l, r, pfn, k);
		pfn += buddy_locked_frames(k);
		n -= buddy_locked_frames(k);
	}
	return BUDDY_OK;
}

static int buddy_locked_free_run_locked(struct buddy_locked *l, uint64_t addr,
					uint64_t nframes)
{
	if (nframes == 0 || nframes > buddy_locked_frames(BUDDY_MAX_ORDER))
		return BUDDY_EINVAL;
	uint64_t pfn = addr >> BUDDY_FRAME_SHIFT;
	if (buddy_locked_region_of(l, pfn) == NULL)
		return BUDDY_ERANGE;
	/* The first piece is the largest: the run's alignment is its own. */
	uint64_t align = buddy_locked_frames(buddy_locked_floor_log2(nframes));
	if ((addr & (BUDDY_FRAME_SIZE - 1)) != 0 || (pfn & (align - 1)) != 0)
		return BUDDY_EALIGN;
	int rc = buddy_locked_run_pieces(l, pfn, nframes, false);
	if (rc != BUDDY_OK)
		return rc;
	return buddy_locked_run_pieces(l, pfn, nframes, true);
}

int buddy_locked_free_run(struct buddy_locked *l, uint64_t addr,
			  uint64_t nframes)
{
	lf_spin_lock(&l->lock);
	int rc = buddy_locked_free_run_locked(l, addr, nframes);
	buddy_locked_tally(l, rc, &l->c.frees);
	lf_spin_unlock(&l->lock);
	return rc;
}

/* Inspection. */

void buddy_locked_stats(struct buddy_locked *l, struct buddy_stats *out)
{
	*out = (struct buddy_stats){ .total_frames = 0 };
	lf_spin_lock(&l->lock);
	out->total_frames = l->nframes;
	out->free_frames = l->c.free_frames;
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
		out->free_blocks[k] = l->c.free_blocks[k];
	out->allocs = l->c.allocs;
	out->frees = l->c.frees;
	out->failed = l->c.failed;
	out->rejected = l->c.rejected;
	for (unsigned e = 0; e < BUDDY_NERR; e++)
		out->rejected_by[e] = l->c.rejected_by[e];
	out->merges = l->c.merges;
	out->splits = l->c.splits;
	lf_spin_unlock(&l->lock);
}

int buddy_locked_frame(struct buddy_locked *l, uint64_t addr, unsigned *kind,
		       unsigned *order)
{
	static const unsigned kinds[4] = {
		[BUDDY_LOCKED_TAIL] = BUDDY_FRAME_TAIL,
		[BUDDY_LOCKED_FREE] = BUDDY_FRAME_FREE,
		[BUDDY_LOCKED_ALLOC] = BUDDY_FRAME_ALLOC,
	};
	lf_spin_lock(&l->lock);
	const struct buddy_locked_region *r = NULL;
	int rc = buddy_locked_locate(l, addr, 0, &r);
	uint8_t s = 0;
	if (rc == BUDDY_OK)
		s = l->state[buddy_locked_idx(r, addr >> BUDDY_FRAME_SHIFT)];
	lf_spin_unlock(&l->lock);
	if (rc != BUDDY_OK)
		return rc;
	if (kind != NULL)
		*kind = kinds[buddy_locked_st_kind(s)];
	if (order != NULL)
		*order = buddy_locked_st_order(s);
	return BUDDY_OK;
}

/* The check (at quiescence; it marks state bytes, then clears the marks). */

/* One entry i of list k, reached from prev: L2, and L1 for the entry. */
static int buddy_locked_check_entry(struct buddy_locked *l, uint32_t i,
				    unsigned k, uint32_t prev)
{
	if (i >= l->nframes)
		return BUDDY_LOCKED_CHECK_LINK;
	if (l->prev[i] != prev)
		return BUDDY_LOCKED_CHECK_PREV;
	if ((l->state[i] & BUDDY_LOCKED_MARK) != 0)
		return BUDDY_LOCKED_CHECK_TWICE;
	if (l->state[i] != buddy_locked_st(BUDDY_LOCKED_FREE, k))
		return BUDDY_LOCKED_CHECK_LISTED;
	l->state[i] |= BUDDY_LOCKED_MARK;
	const struct buddy_locked_region *r = buddy_locked_region_of_idx(l, i);
	uint64_t pfn = r->base + (i - r->first);
	if ((pfn & (buddy_locked_frames(k) - 1)) != 0)
		return BUDDY_LOCKED_CHECK_ALIGN;
	if (pfn + buddy_locked_frames(k) > r->end)
		return BUDDY_LOCKED_CHECK_REGION;
	return 0;
}

/* Walk every list, marking its entries; L2 and L4 against the counters. */
static int buddy_locked_check_lists(struct buddy_locked *l, uint64_t *frame)
{
	uint64_t frames = 0;
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++) {
		uint64_t count = 0;
		uint32_t prev = BUDDY_LOCKED_NIL;
		for (uint32_t i = l->head[k]; i != BUDDY_LOCKED_NIL;
		     prev = i, i = l->next[i]) {
			int rc = buddy_locked_check_entry(l, i, k, prev);
			*frame = i;
			if (rc != 0)
				return rc;
			count++;
		}
		*frame = 0;
		if (count != l->c.free_blocks[k])
			return BUDDY_LOCKED_CHECK_BLOCKS;
		frames += count << k;
	}
	return frames == l->c.free_frames ? 0 : BUDDY_LOCKED_CHECK_FRAMES;
}

/* The block headed at pfn in r, of state s: L1, L2 (marked), L3. */
static int buddy_locked_check_block(const struct buddy_locked *l,
				    const struct buddy_locked_region *r,
				    uint64_t pfn, uint8_t s)
{
	unsigned kind = buddy_locked_st_kind(s), k = buddy_locked_st_order(s);
	if (kind == BUDDY_LOCKED_TAIL)
		return BUDDY_LOCKED_CHECK_TILE;
	if (kind > BUDDY_LOCKED_ALLOC || k > BUDDY_MAX_ORDER)
		return BUDDY_LOCKED_CHECK_STATE;
	if ((pfn & (buddy_locked_frames(k) - 1)) != 0 ||
	    pfn + buddy_locked_frames(k) > r->end)
		return BUDDY_LOCKED_CHECK_TILE;
	for (uint64_t t = pfn + 1; t < pfn + buddy_locked_frames(k); t++)
		if (l->state[buddy_locked_idx(r, t)] != 0)
			return BUDDY_LOCKED_CHECK_TILE;
	if (kind != BUDDY_LOCKED_FREE)
		return 0;
	if ((s & BUDDY_LOCKED_MARK) == 0)
		return BUDDY_LOCKED_CHECK_UNLISTED;
	uint64_t b = pfn ^ buddy_locked_frames(k);
	if (k < BUDDY_MAX_ORDER && b >= r->base &&
	    b + buddy_locked_frames(k) <= r->end &&
	    (l->state[buddy_locked_idx(r, b)] & ~BUDDY_LOCKED_MARK) ==
		    buddy_locked_st(BUDDY_LOCKED_FREE, k))
		return BUDDY_LOCKED_CHECK_COALESCE;
	return 0;
}

/* Walk every region by its heads' orders: L1, L3; recount the free heads. */
static int buddy_locked_check_tiling(const struct buddy_locked *l,
				     uint64_t *frame)
{
	uint64_t heads[BUDDY_ORDERS] = { 0 };
	for (unsigned i = 0; i < l->nregions; i++) {
		const struct buddy_locked_region *r = &l->region[i];
		for (uint64_t pfn = r->base; pfn < r->end;) {
			uint8_t s = l->state[buddy_locked_idx(r, pfn)];
			int rc = buddy_locked_check_block(l, r, pfn, s);
			*frame = buddy_locked_idx(r, pfn);
			if (rc != 0)
				return rc;
			if (buddy_locked_st_kind(s) == BUDDY_LOCKED_FREE)
				heads[buddy_locked_st_order(s)]++;
			pfn += buddy_locked_frames(buddy_locked_st_order(s));
		}
	}
	*frame = 0;
	for (unsigned k = 0; k <= BUDDY_MAX_ORDER; k++)
		if (heads[k] != l->c.free_blocks[k])
			return BUDDY_LOCKED_CHECK_HEADS;
	return 0;
}

int buddy_locked_check(struct buddy_locked *l, uint64_t *frame)
{
	uint64_t where = 0;
	lf_spin_lock(&l->lock);
	int rc = buddy_locked_check_lists(l, &where);
	if (rc == 0)
		rc = buddy_locked_check_tiling(l, &where);
	for (uint32_t i = 0; i < l->nframes; i++)
		l->state[i] &= (uint8_t)~BUDDY_LOCKED_MARK;
	lf_spin_unlock(&l->lock);
	if (frame != NULL)
		*frame = rc != 0 ? where : 0;
	return rc;
}
