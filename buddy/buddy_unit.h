/*
 * buddy_unit.h: the lower level of the buddy allocator's version 3
 * (docs/design.md 2.7, "Version 3: two-level metadata"): the blocks of
 * orders 0 to BU_MAX_ORDER inside one unit of BU_FRAMES frames, all in one
 * 64-bit word, so that the metadata is about half a byte per frame.
 *
 * The word. Frame i (1 <= i < 32) has a 2-bit code in bits 2i and 2i + 1:
 *   BU_CODE_T 0   tail: inside an allocated block whose head is below it
 *   BU_CODE_F 1   free
 *   BU_CODE_H 2   head of an allocated block
 *   BU_CODE_CLAIM 3  claimed: a piece of a run that spans two units,
 *                 being freed (buddy_lower.c, bl_free_run_claim()): not
 *                 free, not allocated; a free of it says EDOUBLE. Only
 *                 inside that call: never in a word at rest (bu_valid).
 * Frame 0 is never a tail (a block of order <= 4 holding it starts at it),
 * so bits 0 and 1 carry instead: bit 0 (BU_FREE0) set if frame 0 is free,
 * clear if it is a head; bit 1 (BU_RES) is R, "reserved": a context's
 * reservation names the unit. An allocated block's order is implicit: a
 * head followed by exactly 2^k - 1 tails. Free frames side by side are
 * the coalesced block: coalescing below order 5 is implicit.
 *
 * The word 0 (BU_CORE) means "not a lower unit": the unit is part of a
 * block of the core above (free, allocated at order >= 5, ...). As a
 * lower word it would be one allocated block of order 5, which this level
 * never makes. A lower unit is never "every frame free with R clear": the
 * transitions that would make that write 0 instead, which gives the unit
 * back to the core in the same CAS.
 *
 * Transitions are pure functions on a local copy of the word (bu_alloc,
 * bu_alloc_at, bu_free, bu_run, bu_free_run, bu_reserve, bu_release,
 * bu_reclaim, bu_make), tested alone (verify/buddy/test_buddy_unit.c);
 * each returns BUDDY_OK and the new word, or an error code and changes
 * nothing. The bu_cas_* functions apply one by CAS on a shared word,
 * retrying only when another CAS on the word succeeded (lock-free); the
 * model checker's buddy.unit configurations race them
 * (verify/mc/mc_buddy_unit.c).
 *
 * Freestanding: buddy.h (error codes) and lockfree/lf_atomic.h only.
 */
#ifndef BUDDY_UNIT_H
#define BUDDY_UNIT_H

#include "buddy.h"

#define BU_ORDER 5                  /* a unit is a block of this order */
#define BU_FRAMES (1u << BU_ORDER)  /* frames per unit */
#define BU_MAX_ORDER (BU_ORDER - 1) /* the largest block in a unit */
#define BU_CODE_T 0u                /* tail */
#define BU_CODE_F 1u                /* free */
#define BU_CODE_H 2u                /* allocated head */
#define BU_CODE_CLAIM 3u            /* claimed by a crossing free_run */
#define BU_LO 0x5555555555555555ull /* the low bit of every code */
#define BU_FREE0 0x1ull             /* frame 0 is free */
#define BU_RES 0x2ull               /* R: reserved */
#define BU_CORE 0ull                /* not a lower unit */
#define BU_ALL_FREE BU_LO           /* bu_free_bits() of an empty unit */
#define BU_NOT_LOWER 1              /* a bu_cas_* result: word 0 */
_Static_assert(BU_FRAMES * 2 == 64, "32 codes of 2 bits fill the word");
_Static_assert(sizeof(lf_atomic_u64) == 8, "the unit word is 64 bits");

/* The n low bits set (n <= 64). */
static inline uint64_t bu_bits(unsigned n)
{
	return n >= 64 ? ~0ull : ((uint64_t)1 << n) - 1;
}

/* The code of frame i (BU_CODE_*, or 3 in a broken word). */
static inline unsigned bu_code(uint64_t w, unsigned i)
{
	if (i == 0)
		return (w & BU_FREE0) ? BU_CODE_F : BU_CODE_H;
	return (unsigned)(w >> (2 * i)) & 3u;
}

static inline bool bu_reserved(uint64_t w)
{
	return (w & BU_RES) != 0;
}

/* Masks with bit 2i set for each frame i of one kind. */
static inline uint64_t bu_free_bits(uint64_t w)
{
	return ((w & ~(w >> 1)) & BU_LO & ~3ull) | (w & BU_FREE0);
}
static inline uint64_t bu_head_bits(uint64_t w)
{
	return (((w >> 1) & ~w) & BU_LO & ~3ull) | (~w & BU_FREE0);
}
static inline uint64_t bu_tail_bits(uint64_t w)
{
	return ~(w | (w >> 1)) & BU_LO & ~3ull;
}
/* Frames 1-31 whose code is 3: never in a well-formed word. */
static inline uint64_t bu_bad_bits(uint64_t w)
{
	return (w & (w >> 1)) & BU_LO & ~3ull;
}

/* Set bits of a mask (no popcount instruction assumed: freestanding). */
static inline unsigned bu_count(uint64_t m)
{
	m = m - ((m >> 1) & BU_LO);
	m = (m & 0x3333333333333333ull) + ((m >> 2) & 0x3333333333333333ull);
	m = (m + (m >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)((m * 0x0101010101010101ull) >> 56);
}

static inline unsigned bu_free_frames(uint64_t w)
{
	return w == BU_CORE ? 0 : bu_count(bu_free_bits(w));
}

/* Bit 2p for each p aligned to 2^j frames (j <= 5). */
static inline uint64_t bu_aligned(unsigned j)
{
	static const uint64_t m[BU_ORDER + 1] = {
		BU_LO,
		0x1111111111111111ull,
		0x0101010101010101ull,
		0x0001000100010001ull,
		0x0000000100000001ull,
		0x1ull,
	};
	return m[j];
}

/*
 * The free blocks of f (bu_free_bits): g[j] has bit 2p set if frames
 * [p, p + 2^j) are free and p is aligned to 2^j; g[5]: the whole unit.
 */
static inline void bu_groups(uint64_t f, uint64_t g[BU_ORDER + 1])
{
	g[0] = f;
	for (unsigned j = 0; j < BU_ORDER; j++)
		g[j + 1] = g[j] & (g[j] >> (2u << j)) & bu_aligned(j + 1);
}

/* The maximal free blocks of order j (not inside a free block of j + 1). */
static inline uint64_t bu_maximal(const uint64_t g[BU_ORDER + 1], unsigned j)
{
	if (j == BU_ORDER)
		return g[BU_ORDER];
	return g[j] & ~(g[j + 1] | g[j + 1] << (2u << j));
}

/* The order of the largest free block in w, or -1 if none is free. */
static inline int bu_max_free_order(uint64_t w)
{
	if (w == BU_CORE)
		return -1;
	/*
	 * g_j level by level (bu_groups), up to the first empty one: a
	 * nearly full unit (most of those a free lists) stops at once.
	 */
	uint64_t g = bu_free_bits(w);
	int m = -1;
	for (unsigned j = 0; g != 0; j++) {
		m = (int)j;
		if (j == BU_ORDER)
			break;
		g &= (g >> (2u << j)) & bu_aligned(j + 1);
	}
	return m;
}

/*
 * Where an allocation of order k ending at or before frame end (1-32)
 * goes: the lowest 2^k frames of the smallest maximal free block of
 * order >= k that starts low enough, the lowest such block among equals
 * (what a buddy splitting the block and keeping its low half would
 * give). The frame offset, or -1 if none fits.
 */
static inline int bu_pick(uint64_t w, unsigned k, unsigned end)
{
	uint32_t n = (uint32_t)1 << k;
	if (end < n || end > BU_FRAMES)
		return -1;
	/* An empty reserved unit (a CPU's cache after its last free). */
	if (w == (BU_ALL_FREE | BU_RES))
		return 0;
	uint64_t ok = bu_bits(2 * (end - n) + 1); /* starts p <= end - n */
	/*
	 * g_j and g_{j+1} level by level (bu_groups), stopping at the first
	 * order with a fitting maximal block: an allocation in a unit with
	 * small free blocks looks at one or two levels. Unrolled, so that
	 * every shift is a constant.
	 */
	uint64_t g = bu_free_bits(w);
#pragma GCC unroll 5
	for (unsigned j = 0; j < BU_ORDER; j++) {
		uint64_t up = g & (g >> (2u << j)) & bu_aligned(j + 1);
		if (j >= k) {
			uint64_t e = g & ~(up | up << (2u << j)) & ok;
			if (e != 0)
				return __builtin_ctzll(e) / 2;
		}
		g = up;
	}
	return (g & ok) != 0 ? 0 : -1;
}

/* The code bits of frames [p, p + n), R excluded. */
static inline uint64_t bu_run_bits(unsigned p, unsigned n)
{
	return (bu_bits(2 * n) << (2 * p)) & ~BU_RES;
}

/*
 * w with block [p, p + 2^k) allocated: a head and tails (frame 0's head
 * is its bit 0 clear: H masked with ~R is 0 there, no branch).
 */
static inline uint64_t bu_put_block(uint64_t w, unsigned p, unsigned k)
{
	w &= ~bu_run_bits(p, 1u << k); /* tails; frame 0 a head */
	return w | (((uint64_t)BU_CODE_H << (2 * p)) & ~BU_RES);
}

/* w with frames [p, p + n) free. */
static inline uint64_t bu_put_free(uint64_t w, unsigned p, unsigned n)
{
	uint64_t m = bu_run_bits(p, n);
	return (w & ~m) | (BU_LO & m);
}

/*
 * A word with every frame free is not kept unless reserved (0: core).
 * Every frame free (bu_free_bits() == BU_ALL_FREE: frame 0's bit set,
 * every other code F) and R clear is exactly the word BU_ALL_FREE: one
 * compare on the free's path, not the free mask.
 */
static inline uint64_t bu_settle(uint64_t w)
{
	bool empty_unreserved = w == BU_ALL_FREE;
	return empty_unreserved ? BU_CORE : w;
}

/*
 * The first word of a unit the core gives to the lower level: frames
 * [lo, hi) (its region's part of it) free, the others allocated heads of
 * order 0 for ever, R if reserved. The caller then allocates in it
 * (bu_alloc, bu_alloc_at, bu_run) before storing it, or, for a reserved
 * unit, stores it as is.
 */
static inline uint64_t bu_make(unsigned lo, unsigned hi, bool reserved)
{
	uint64_t w = BU_LO & ~3ull; /* frames 1-31 free */
	w <<= 1;                    /* ... now heads */
	w = bu_put_free(w, lo, hi - lo);
	return w | (reserved ? BU_RES : 0);
}

/* Allocate order k (<= BU_MAX_ORDER) ending by frame end: *off. */
static inline int bu_alloc(uint64_t w, unsigned k, unsigned end, uint64_t *nw,
			   unsigned *off)
{
	if (k > BU_MAX_ORDER)
		return BUDDY_EINVAL;
	int p = bu_pick(w, k, end);
	if (p < 0)
		return BUDDY_ENOMEM;
	*off = (unsigned)p;
	*nw = bu_put_block(w, (unsigned)p, k);
	return BUDDY_OK;
}

/*
 * Up to max blocks of order 0 from w at once, when its free frames are
 * exactly [a, BU_FRAMES) for some a (a unit used from its bottom up, as a
 * reservation that serves order 0 is): frames a, a + 1, ..., which is
 * what as many calls of bu_alloc(w, 0, BU_FRAMES) in a row give (the
 * maximal free blocks of [a, 32) grow from a, so the smallest is the one
 * at a, and after it [a + 1, 32) is of the same shape). The number taken,
 * min(max, 32 - a), with the new word in *nw and a in *first; 0 if w is
 * not of that shape (nothing written). The per-CPU cache's refill takes
 * its batch so (v3-status item 49), not by a pick a block.
 */
static inline unsigned bu_alloc_run0(uint64_t w, unsigned max, uint64_t *nw,
				     unsigned *first)
{
	uint64_t f = bu_free_bits(w);
	if (f == 0 || max == 0)
		return 0;
	unsigned a = (unsigned)__builtin_ctzll(f) / 2;
	if (f != (BU_LO & ~bu_bits(2 * a)))
		return 0; /* a free frame below a gap: not a top run */
	unsigned n = BU_FRAMES - a < max ? BU_FRAMES - a : max;
	uint64_t m = bu_run_bits(a, n);
	/* Each frame of [a, a + n) a head (code H; frame 0: bit 0 clear). */
	*nw = (w & ~m) | ((BU_LO << 1) & m);
	*first = a;
	return n;
}

/* Allocate exactly [i, i + 2^k): BUDDY_EBUSY if a frame of it is not free. */
static inline int bu_alloc_at(uint64_t w, unsigned i, unsigned k, uint64_t *nw)
{
	if (k > BU_MAX_ORDER || i >= BU_FRAMES)
		return BUDDY_EINVAL;
	if (i & ((1u << k) - 1))
		return BUDDY_EALIGN;
	/*
	 * Every frame free: code F in each (frame 0: bit 0 set), R masked
	 * out; the same test as bu_free_bits() & need == need, in one mask.
	 */
	uint64_t m = bu_run_bits(i, 1u << k);
	if ((w & m) != (BU_LO & m))
		return BUDDY_EBUSY;
	*nw = bu_put_block(w, i, k);
	return BUDDY_OK;
}

/*
 * Is [i, i + 2^k) exactly an allocated block of w (k <= BU_MAX_ORDER, i
 * aligned to 2^k: the callers check both)? BUDDY_OK, or why not:
 * EDOUBLE (frame i free), ETAIL (inside an allocated block), EORDER (a
 * head of another order).
 */
static inline int bu_block_check(uint64_t w, unsigned i, unsigned k)
{
	unsigned n = 1u << k;
	/*
	 * The fast test, without branches: a head at i (frame 0: bit 0
	 * clear; R, bit 1, masked out of both sides), then tails, and frame
	 * i + n not a tail (its mask nx is 0 past the unit's end: the
	 * second shift carries it out of the word).
	 */
	uint64_t m = bu_run_bits(i, n);
	uint64_t head = ((uint64_t)BU_CODE_H << (2 * i)) & ~BU_RES;
	uint64_t nx = (3ull << (2 * i)) << (2 * n);
	if (LF_LIKELY((w & m) == head && ((w & nx) != 0 || nx == 0)))
		return BUDDY_OK;
	unsigned c = bu_code(w, i);
	if (c == BU_CODE_F || c == BU_CODE_CLAIM)
		return BUDDY_EDOUBLE; /* free, or being freed */
	if (c == BU_CODE_T)
		return BUDDY_ETAIL;
	LF_ASSERT(c == BU_CODE_H);
	return BUDDY_EORDER; /* a smaller block, or a larger one */
}

/*
 * Free the block of order k at frame i. The new word is 0 (BU_CORE) when
 * the unit, unreserved, became entirely free: it goes back to the core.
 */
static inline int bu_free(uint64_t w, unsigned i, unsigned k, uint64_t *nw)
{
	if (k > BU_MAX_ORDER || i >= BU_FRAMES)
		return BUDDY_EINVAL;
	if (i & ((1u << k) - 1))
		return BUDDY_EALIGN;
	int rc = bu_block_check(w, i, k);
	if (rc != BUDDY_OK)
		return rc;
	*nw = bu_settle(bu_put_free(w, i, 1u << k));
	return BUDDY_OK;
}

/*
 * Runs of n frames (1 <= n < 32) inside a unit: the binary decomposition
 * of n from p, largest piece first, each piece its own allocated block
 * (as buddy_alloc_run() makes them). The order of the block a run takes.
 */
static inline unsigned bu_run_order(unsigned n)
{
	unsigned k = 0;
	while ((1u << k) < n)
		k++;
	return k;
}

/* w with the pieces of a run of n frames at p allocated (frames free). */
static inline uint64_t bu_put_run(uint64_t w, unsigned p, unsigned n)
{
	for (int b = BU_MAX_ORDER; b >= 0; b--)
		if (n & (1u << b)) {
			w = bu_put_block(w, p, (unsigned)b);
			p += 1u << b;
		}
	return w;
}

/*
 * Allocate a run of n frames: the block bu_alloc would take for order
 * bu_run_order(n), its pieces allocated and the rest of it left free in
 * the same word (no tail in transit). *off: its first frame.
 */
static inline int bu_run(uint64_t w, unsigned n, uint64_t *nw, unsigned *off)
{
	if (n == 0 || n >= BU_FRAMES)
		return BUDDY_EINVAL;
	int p = bu_pick(w, bu_run_order(n), BU_FRAMES);
	if (p < 0)
		return BUDDY_ENOMEM;
	*off = (unsigned)p;
	*nw = bu_put_run(w, (unsigned)p, n);
	return BUDDY_OK;
}

/*
 * Free a run of n frames at i (1 <= n < 32): every piece must be an
 * allocated block of its order, else the first piece's error and nothing
 * changes; then all are freed at once (bu_settle: maybe 0).
 */
static inline int bu_free_run(uint64_t w, unsigned i, unsigned n, uint64_t *nw)
{
	if (n == 0 || n >= BU_FRAMES || i >= BU_FRAMES)
		return BUDDY_EINVAL;
	if (i + n > BU_FRAMES)
		return BUDDY_ERANGE;
	uint64_t v = w;
	unsigned p = i;
	for (int b = BU_MAX_ORDER; b >= 0; b--)
		if (n & (1u << b)) {
			if (p & ((1u << b) - 1))
				return BUDDY_EALIGN;
			int rc = bu_block_check(w, p, (unsigned)b);
			if (rc != BUDDY_OK)
				return rc;
			v = bu_put_free(v, p, 1u << b);
			p += 1u << b;
		}
	*nw = bu_settle(v);
	return BUDDY_OK;
}

/* R set: a context takes the unit as (part of) its reservation. */
static inline int bu_reserve(uint64_t w, uint64_t *nw)
{
	if (w == BU_CORE)
		return BUDDY_EINVAL;
	*nw = w | BU_RES;
	return BUDDY_OK;
}

/* R cleared: 0 (back to the core) if every frame is free. */
static inline int bu_release(uint64_t w, uint64_t *nw)
{
	if (w == BU_CORE)
		return BUDDY_EINVAL;
	*nw = bu_settle(w & ~BU_RES);
	return BUDDY_OK;
}

/* A reserved unit with every frame free goes back to the core. */
static inline int bu_reclaim(uint64_t w, uint64_t *nw)
{
	if (w != (BU_ALL_FREE | BU_RES))
		return BUDDY_EBUSY;
	*nw = BU_CORE;
	return BUDDY_OK;
}

/* The order of the allocated block with head i (BUDDY_ETAIL etc. if not). */
static inline int bu_block_order(uint64_t w, unsigned i, unsigned *k)
{
	unsigned c = bu_code(w, i);
	if (c != BU_CODE_H)
		return c == BU_CODE_F ? BUDDY_EDOUBLE : BUDDY_ETAIL;
	unsigned n = 1;
	while (i + n < BU_FRAMES && bu_code(w, i + n) == BU_CODE_T)
		n++;
	*k = bu_run_order(n);
	return (1u << *k) == n ? BUDDY_OK : BUDDY_EORDER;
}

/*
 * Is w a well-formed lower word (B1 of the lower level)? No code 3, every
 * tail inside the aligned block of order <= BU_MAX_ORDER of the head
 * before it, not entirely free unless reserved, not 0.
 */
static inline bool bu_valid(uint64_t w)
{
	if (w == BU_CORE || bu_bad_bits(w) != 0 || bu_settle(w) != w)
		return false;
	for (unsigned i = 0; i < BU_FRAMES;) {
		unsigned c = bu_code(w, i), k;
		if (c == BU_CODE_F) {
			i++;
			continue;
		}
		if (c != BU_CODE_H || bu_block_order(w, i, &k) != BUDDY_OK ||
		    k > BU_MAX_ORDER || (i & ((1u << k) - 1)) != 0)
			return false;
		i += 1u << k;
	}
	return true;
}

/*
 * The CAS loops: load the word, compute, CAS; a failed CAS means another
 * CAS on the word succeeded, so each retry follows progress elsewhere.
 * BU_NOT_LOWER (positive) when the word is 0: the unit is at the core.
 * *old and *nw, where given, receive the words of the successful CAS.
 *
 * Orders. The first load is acquire: it pairs with the release or
 * seq_cst CAS (or the first store, release) that wrote the word, so that
 * a block's previous owner's writes to its frames happen before what we
 * decide from it. An allocation's CAS is acq_rel: it claims frames, and
 * the claim is read by the next CAS on the word. A free's CAS is seq_cst:
 * the freer of an unreserved unit loads the unit's pstk after it, against
 * a popper that clears pstk before loading the word (the Dekker argument
 * of docs/design.md 2.7, "Listing"), and it publishes memory an exact
 * ENOMEM must see. Reserve, release and reclaim are seq_cst for the same
 * pairing with the listing. bu_cas() runs every transition, the
 * allocations by alloc_at and run included, with seq_cst: one loop, and
 * on x86 the same instruction as acq_rel.
 */
/*
 * bu_cas_alloc() and bu_cas() with a snapshot: if m is not NULL (the mask
 * beside the word, m == a + 1: buddy_lower.h), *mseen gets the value m
 * had at the instant of the successful CAS, which compares the mask with
 * the word in one 16-byte compare-exchange and writes it back unchanged
 * (bu_cas_word_m()). The lower level's lazy clear (bl_mask_clear())
 * clears only bits of that snapshot (docs/design.md 2.7, "Bits and the
 * lazy clear"). A snapshot loaded after the word's read but not compared
 * missed a free's hold set by a free that came after that read, when an
 * allocation and that free of the same frames took the word back to the
 * value read (an ABA of the word): the CAS succeeded, the hold stayed on
 * the block it handed out, and the owner's free was refused (EDOUBLE;
 * stress_buddy_v3_inflight, v3-status item 52).
 */
/*
 * The cached mask's version (over units, the mask's high 32 bits:
 * buddy_lower.h): advanced by every write of the mask that clears a bit
 * other than a pop's (an allocation's lazy clear, a refill's CAS, an
 * adoption's zeroing), so that a free that sets its block's bit by an
 * 8-byte CAS on the mask alone fails if such a write came after its load
 * of the mask. The CASes that free frames leave the mask alone: each frees
 * only blocks whose bit is set (docs/design.md 2.7, "The mask's version";
 * docs/v3-status.md items 55, 57).
 */
#define BU_MASK_VER (1ull << 32)

static inline bool bu_cas_word_m(lf_atomic_u64 *a, uint64_t *w, uint64_t v,
				 const lf_atomic_u64 *m, uint64_t *mseen,
				 lf_order o)
{
	if (m == NULL)
		return lf_cas_u64(a, w, v, o);
	/* Relaxed: compared with the word by the CAS below. */
	uint64_t e[2] = { *w, lf_load_u64(m, LF_RELAXED) };
	const uint64_t d[2] = { v, e[1] };
	/* Order o: as the word's own CAS (the mask written back unchanged). */
	if (lf_cas2_u64(a, e, d, o)) {
		if (mseen != NULL)
			*mseen = e[1];
		return true;
	}
	*w = e[0];
	return false;
}

static inline int bu_cas_alloc_m(lf_atomic_u64 *a, unsigned k, unsigned end,
				 unsigned *off, uint64_t *nwp,
				 const lf_atomic_u64 *m, uint64_t *mseen)
{
	/* Acquire: pairs with the CAS or store that wrote the word. */
	uint64_t w = lf_load_u64(a, LF_ACQUIRE), nw = 0;
	for (;;) {
		if (w == BU_CORE)
			return BU_NOT_LOWER;
		int rc = bu_alloc(w, k, end, &nw, off);
		if (rc != BUDDY_OK)
			return rc;
		/* Acq_rel: a claim (above); acquire on failure. */
		if (bu_cas_word_m(a, &w, nw, m, mseen, LF_ACQ_REL)) {
			if (nwp != NULL)
				*nwp = nw;
			return BUDDY_OK;
		}
	}
}

static inline int bu_cas_alloc(lf_atomic_u64 *a, unsigned k, unsigned end,
			       unsigned *off, uint64_t *nwp)
{
	return bu_cas_alloc_m(a, k, end, off, nwp, NULL, NULL);
}

/* The CAS of one of the transitions below, by number (a switch, no calls
 * through pointers: the mc harness and the kernel see one plain loop). */
enum bu_op {
	BU_OP_ALLOC_AT,
	BU_OP_FREE,
	BU_OP_RUN,
	BU_OP_FREE_RUN,
	BU_OP_RESERVE,
	BU_OP_RELEASE,
	BU_OP_RECLAIM,
};

static inline int bu_apply(enum bu_op op, uint64_t w, unsigned i, unsigned n,
			   uint64_t *nw, unsigned *off)
{
	switch (op) {
	case BU_OP_ALLOC_AT:
		return bu_alloc_at(w, i, n, nw);
	case BU_OP_FREE:
		return bu_free(w, i, n, nw);
	case BU_OP_RUN:
		return bu_run(w, n, nw, off);
	case BU_OP_FREE_RUN:
		return bu_free_run(w, i, n, nw);
	case BU_OP_RESERVE:
		return bu_reserve(w, nw);
	case BU_OP_RELEASE:
		return bu_release(w, nw);
	case BU_OP_RECLAIM:
		return bu_reclaim(w, nw);
	}
	return BUDDY_EINVAL;
}

/*
 * Apply op (arguments i and n: frame and order, or frame and count) by
 * CAS: BUDDY_OK with *old and *nw the words of the CAS (*off: a run's
 * first frame), an error code (nothing changed), or BU_NOT_LOWER.
 */
/* bu_cas() with a snapshot of m, as bu_cas_alloc_m(). */
static inline int bu_cas_m(lf_atomic_u64 *a, enum bu_op op, unsigned i,
			   unsigned n, uint64_t *old, uint64_t *nw,
			   unsigned *off, const lf_atomic_u64 *m,
			   uint64_t *mseen)
{
	/* Acquire: pairs with the CAS or store that wrote the word. */
	uint64_t w = lf_load_u64(a, LF_ACQUIRE), v = 0;
	unsigned o = 0;
	for (;;) {
		if (w == BU_CORE)
			return BU_NOT_LOWER;
		int rc = bu_apply(op, w, i, n, &v, &o);
		if (rc != BUDDY_OK)
			return rc;
		uint64_t seen = w;
		/* Seq_cst: a free or a change of R (above). */
		if (bu_cas_word_m(a, &w, v, m, mseen, LF_SEQ_CST)) {
			*old = seen;
			*nw = v;
			if (off != NULL)
				*off = o;
			return BUDDY_OK;
		}
	}
}

static inline int bu_cas(lf_atomic_u64 *a, enum bu_op op, unsigned i,
			 unsigned n, uint64_t *old, uint64_t *nw, unsigned *off)
{
	return bu_cas_m(a, op, i, n, old, nw, off, NULL, NULL);
}

#endif /* BUDDY_UNIT_H */
