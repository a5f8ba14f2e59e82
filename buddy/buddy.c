/*
 * buddy.c: the zone of the lock-free buddy allocator: set-up in caller
 * memory, regions, statistics and the invariant checker.
 *
 * Metadata layout (one area from the caller, 64-byte aligned):
 *   struct buddy_zone      stacks (one cache line per order), regions
 *   struct buddy_cpu [n]   one cache-aligned context per CPU
 *   lf_atomic_u16 [I]      state word per frame, 64-byte aligned
 *   lf_atomic_u32 [I]      stack link per frame
 * I is the frame count plus fewer than 2 * BUDDY_LINE_FRAMES of padding
 * before each region, so that a region starts in a line of indices of its
 * own, at an index congruent to its first pfn modulo BUDDY_LINE_FRAMES
 * (buddy_i.h). That is 6 bytes per frame and
 * per padding index, plus sizeof(struct buddy_zone) and sizeof(struct
 * buddy_cpu) per CPU (docs/design.md gives the figures).
 *
 * Over units (BUDDY_CORE_SHIFT 5, lf_buddy_units) the arrays have an
 * entry per unit of 32 indices, and version 3's lower level adds, after
 * the contexts, a struct bl_ctx per CPU, and after the state words
 * (padded to a line) its unit words (8 bytes a unit), then the core's
 * links, the partial links (4) and pstk (2): 20 bytes a unit in all
 * (docs/design.md 2.7).
 *
 * The algorithm is in buddy_core.c (stacks, split, merge), buddy_cache.c
 * (per-CPU caches) and buddy_place.c (constrained allocations).
 */
#include "buddy_i.h"

_Static_assert(sizeof(struct buddy_zone) % LF_CACHELINE == 0, "zone lines");
_Static_assert(sizeof(struct buddy_cpu) % LF_CACHELINE == 0, "cpu lines");

/* Validate regions; their total frame count, or 0 if invalid. */
static uint64_t buddy_regions_frames(const struct buddy_region *rg, unsigned n)
{
	if (rg == NULL || n == 0 || n > BUDDY_MAX_REGIONS)
		return 0;
	uint64_t total = 0, end = 0;
	for (unsigned i = 0; i < n; i++) {
		/*
		 * Frame granularity at every shift: over units a region's
		 * partial units are edge units of the lower level
		 * (buddy_rgn_edges()).
		 */
		if (rg[i].size == 0 ||
		    (rg[i].base | rg[i].size) & (BUDDY_FRAME_SIZE - 1))
			return 0;
		if (rg[i].base + rg[i].size < rg[i].base)
			return 0; /* wraps */
		if (i > 0 && rg[i].base < end)
			return 0; /* unsorted or overlapping */
		end = rg[i].base + rg[i].size;
		total += rg[i].size >> BUDDY_FRAME_SHIFT;
		if (total >= BUDDY_MAX_FRAMES)
			return 0;
	}
	return total;
}

static size_t buddy_meta_frames_off(unsigned ncpus)
{
	size_t ctx = sizeof(struct buddy_cpu);
#if BUDDY_CORE_SHIFT > 0
	ctx += sizeof(struct bl_ctx);
#endif
	return sizeof(struct buddy_zone) + ncpus * ctx;
}

/*
 * The first index of a region starting at pfn, the last one ending at idx:
 * in a line (a unit of BUDDY_LINE_FRAMES indices) of its own, at pfn's
 * offset in its line. So no line of indices holds frames of two regions
 * (version 3's units, docs/design.md 2.7, "Index layout"), and a block
 * aligned in pfn is aligned in indices.
 */
/*
 * Over units the granule is a line of unit words (BL_LINE units, 256
 * frames): a block of unit order 3 aligned in pfn, a reservation's line,
 * then has its 8 words on one cache line (docs/design.md 2.7); fewer than
 * 2 * 256 padding indices a region, 16 units.
 */
#if BUDDY_CORE_SHIFT > 0
#define BUDDY_RGN_ALIGN ((uint64_t)BL_LINE << BUDDY_CORE_SHIFT)
#else
#define BUDDY_RGN_ALIGN ((uint64_t)BUDDY_LINE_FRAMES)
#endif
static uint64_t buddy_rgn_first_idx(uint64_t idx, uint64_t pfn)
{
	uint64_t line = (idx + BUDDY_RGN_ALIGN - 1) & ~(BUDDY_RGN_ALIGN - 1);
	return line + (pfn & (BUDDY_RGN_ALIGN - 1));
}

/* Indices (frames and padding) of valid regions: the arrays' length. */
static uint64_t buddy_regions_idx(const struct buddy_region *rg, unsigned n)
{
	uint64_t idx = 0;
	for (unsigned i = 0; i < n; i++)
		idx = buddy_rgn_first_idx(idx,
					  rg[i].base >> BUDDY_FRAME_SHIFT) +
		      (rg[i].size >> BUDDY_FRAME_SHIFT);
	return idx;
}

/*
 * Bytes of the core's two arrays for nidx frame indices (an entry per core
 * index, buddy_i.h), the state words padded to a line.
 */
static size_t buddy_meta_st(uint64_t ncx)
{
	return (size_t)((ncx * 2 + LF_CACHELINE - 1) &
			~(uint64_t)(LF_CACHELINE - 1));
}

static size_t buddy_meta_arrays(uint64_t nidx)
{
	uint64_t ncx = buddy_ncx(nidx), per = 4; /* the links */
#if BUDDY_CORE_SHIFT > 0
	/*
	 * unit word and the cached mask beside it (16 bytes: BU_W(),
	 * buddy_lower.h), partial link, pstk
	 */
	per += 8 * BU_WS + 4 + 2;
#endif
	return buddy_meta_st(ncx) + (size_t)(ncx * per);
}

size_t buddy_meta_size(const struct buddy_region *regions, unsigned nregions,
		       unsigned ncpus)
{
	uint64_t f = buddy_regions_frames(regions, nregions);
	if (f == 0 || ncpus == 0 || ncpus > UINT32_MAX / 2)
		return 0;
	uint64_t nidx = buddy_regions_idx(regions, nregions);
	if (nidx >= BUDDY_MAX_FRAMES)
		return 0;
	return buddy_meta_frames_off(ncpus) + buddy_meta_arrays(nidx);
}

static void buddy_cpu_init(struct buddy_cpu *c, struct buddy_zone *z,
			   uint32_t id)
{
#if BUDDY_HAS_CACHE
	lf_spin_init(&c->lock);
	lf_init_u32(&c->own, 0);
	for (unsigned o = 0; o < BUDDY_CC_ORDERS; o++) {
		lf_init_u32(&c->count[o], 0);
		for (unsigned i = 0; i < BUDDY_CC_CAP(o); i++)
			buddy_slots(c, o)[i] = LF_STACK_NIL;
	}
	c->asym = z->asym;
#endif
	c->zone = z;
	c->id = id;
	c->nocache = false;
	c->chain = NULL;
	lf_init_u32(&c->busy, 0);
	for (unsigned o = 0; o < BUDDY_ORDERS; o++) {
		lf_init_u64(&c->free_delta[o], 0);
		lf_init_u32(&c->spare[o], BUDDY_SPARE_NONE);
		c->recent[o] = BUDDY_SPARE_NONE;
	}
	lf_init_u32(&c->spare_mask, 0);
	for (unsigned i = 0; i < BC_COUNT; i++)
		lf_init_u64(&c->ctr[i], 0);
}

/*
 * Make region r's whole core granules free as maximal aligned blocks,
 * counted on context c: every frame at shift 0; over units, the units
 * wholly inside r (docs/design.md 2.7, B1: the core tiles a region's
 * whole units; its edge units are the lower level's, buddy_rgn_edges()).
 */
static void buddy_rgn_fill(struct buddy_zone *z, struct buddy_cpu *c,
			   const struct buddy_rgn *r)
{
	uint64_t x, xend;
	buddy_rgn_whole(r, &x, &xend); /* indices: congruent to pfns */
	uint64_t pfn = r->pfn + (x - r->idx), end = r->pfn + (xend - r->idx);
	while (pfn < end) {
		unsigned k = 0;
		while (k < BUDDY_MAX_ORDER && !(pfn & ((uint64_t)1 << k)) &&
		       pfn + ((uint64_t)2 << k) <= end)
			k++;
		uint32_t h = r->idx + (uint32_t)(pfn - r->pfn);
		lf_init_u16(buddy_st(z, h), bst_make(BK_FREE, k, k + 1));
		lf_stack_push(&z->stacks[k].s, z->link, buddy_cx(h));
		buddy_free_delta(c, k, 1);
		pfn += (uint64_t)1 << k;
	}
}

#if BUDDY_CORE_SHIFT > 0
/*
 * Region r's edge units (buddy_rgn_edge_units(); docs/design.md 2.7, "The
 * word"): LOWER at the core for ever (the core tiles only whole units,
 * B1); the word of each has r's frames free and every other frame an
 * allocated head of order 0 for ever, so it is never entirely free and
 * never goes back to the core; listed on its partial stack (B4), not
 * reserved. The address checks refuse the outside frames (BUDDY_ERANGE)
 * before any word is read.
 */
static void buddy_rgn_edges(struct buddy_zone *z, const struct buddy_rgn *r)
{
	uint32_t u[2];
	unsigned n = buddy_rgn_edge_units(r, u);
	for (unsigned i = 0; i < n; i++) {
		lf_init_u16(&z->st[u[i]],
			    bst_make(BK_LOWER, BUDDY_CORE_SHIFT, 0));
		bl_zone_edge(&z->lower, u[i], buddy_rgn_edge_lo(r, u[i]),
			     buddy_rgn_edge_hi(r, u[i]));
	}
}
#endif

static void buddy_zone_layout(struct buddy_zone *z, void *meta,
			      const struct buddy_region *rg, unsigned n,
			      unsigned ncpus, uint64_t frames)
{
	char *base = meta;
	z->nrgn = n;
	z->ncpus = ncpus;
	z->nframes = frames;
	z->nidx = buddy_regions_idx(rg, n);
	z->cpus = (struct buddy_cpu *)(base + sizeof(*z));
	z->st = (lf_atomic_u16 *)(base + buddy_meta_frames_off(ncpus));
	uint64_t ncx = buddy_ncx(z->nidx);
	char *arr = (char *)z->st + buddy_meta_st(ncx);
#if BUDDY_CORE_SHIFT > 0
	arr += ncx * 8 * BU_WS; /* the unit words (buddy_zone_init()) */
#endif
	z->link = (lf_atomic_u32 *)arr;
	uint64_t idx = 0;
	for (unsigned i = 0; i < n; i++) {
		z->rgn[i].pfn = rg[i].base >> BUDDY_FRAME_SHIFT;
		z->rgn[i].n = (uint32_t)(rg[i].size >> BUDDY_FRAME_SHIFT);
		idx = buddy_rgn_first_idx(idx, z->rgn[i].pfn);
		z->rgn[i].idx = (uint32_t)idx;
		idx += z->rgn[i].n;
	}
}

int buddy_zone_init(struct buddy_zone **zp, void *meta, size_t meta_size,
		    const struct buddy_region *regions, unsigned nregions,
		    unsigned ncpus)
{
	size_t need = buddy_meta_size(regions, nregions, ncpus);
	if (zp == NULL || meta == NULL || need == 0 ||
	    ((uintptr_t)meta & (LF_CACHELINE - 1)))
		return BUDDY_EINVAL;
	if (meta_size < need)
		return BUDDY_ENOSPC;
	struct buddy_zone *z = meta;
	z->asym = lf_platform_heavy_barrier_init() &&
		  lf_platform_heavy_barrier_cheap();
	buddy_zone_layout(z, meta, regions, nregions, ncpus,
			  buddy_regions_frames(regions, nregions));
	for (unsigned o = 0; o < BUDDY_ORDERS; o++)
		lf_stack_init(&z->stacks[o].s);
	for (uint32_t i = 0; i < ncpus; i++)
		buddy_cpu_init(&z->cpus[i], z, i);
	for (uint64_t u = 0; u < buddy_ncx(z->nidx); u++) {
		lf_init_u16(&z->st[u], bst_make(BK_TAIL, 0, 0));
		lf_init_u32(&z->link[u], LF_STACK_NIL);
	}
	for (unsigned i = 0; i < nregions; i++)
		buddy_rgn_fill(z, &z->cpus[0], &z->rgn[i]);
#if BUDDY_CORE_SHIFT > 0
	/* The lower level: every unit at the core (word 0), no context. */
	uint64_t ncx = buddy_ncx(z->nidx);
	lf_atomic_u64 *word =
		(lf_atomic_u64 *)((char *)z->st + buddy_meta_st(ncx));
	lf_atomic_u32 *plink = z->link + ncx;
	bl_zone_init(&z->lower, word, plink, (lf_atomic_u16 *)(plink + ncx),
		     (uint32_t)ncx, (struct bl_source){ .core = z },
		     (struct bl_ctx *)(z->cpus + ncpus), ncpus);
	/* The cached masks: beside each unit word (BU_W(), buddy_lower.h). */
	z->lower.mask = word + 1;
	for (uint64_t u = 0; u < ncx; u++)
		lf_init_u64(&z->lower.mask[BU_W(u)], 0);
	for (unsigned i = 0; i < ncpus; i++)
		z->lower.ctx[i].mask = z->lower.mask;
	for (unsigned i = 0; i < nregions; i++)
		buddy_rgn_edges(z, &z->rgn[i]);
#endif
	*zp = z;
	return BUDDY_OK;
}

struct buddy_cpu *buddy_zone_cpu(struct buddy_zone *z, unsigned cpu)
{
	if (z == NULL || cpu >= z->ncpus)
		return NULL;
	return &z->cpus[cpu];
}

const struct buddy_rgn *buddy_rgn_search_pfn(const struct buddy_zone *z,
					     uint64_t pfn)
{
	uint32_t lo = 0, hi = z->nrgn;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		const struct buddy_rgn *r = &z->rgn[mid];
		if (pfn < r->pfn)
			hi = mid;
		else if (pfn >= r->pfn + r->n)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

const struct buddy_rgn *buddy_rgn_search_idx(const struct buddy_zone *z,
					     uint32_t idx)
{
	uint32_t lo = 0, hi = z->nrgn;
	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;
		if (idx < z->rgn[mid].idx)
			hi = mid;
		else
			lo = mid;
	}
	LF_ASSERT(idx - z->rgn[lo].idx < z->rgn[lo].n);
	return &z->rgn[lo];
}

#if BUDDY_CORE_SHIFT > 0
bool buddy_unit_edge(const struct buddy_zone *z, uint32_t u, unsigned *lo,
		     unsigned *hi)
{
	uint64_t base = (uint64_t)u << BUDDY_CORE_SHIFT;
	/* The last region starting below base + 32 (regions sorted). */
	uint32_t a = 0, b = z->nrgn;
	while (b - a > 1) {
		uint32_t mid = (a + b) / 2;
		if (z->rgn[mid].idx < base + BU_FRAMES)
			a = mid;
		else
			b = mid;
	}
	const struct buddy_rgn *r = &z->rgn[a];
	if (r->idx >= base + BU_FRAMES || (uint64_t)r->idx + r->n <= base)
		return false; /* no frame of a region (padding) */
	*lo = buddy_rgn_edge_lo(r, u);
	*hi = buddy_rgn_edge_hi(r, u);
	return *lo != 0 || *hi != BU_FRAMES;
}

/*
 * Frame i of a lower unit, from its word (docs/design.md 2.7,
 * "Statistics"): the head of an allocated block (ALLOC, its order from
 * the tails), the first frame of a maximal free block (FREE, its order),
 * else TAIL (inside either).
 */
static void buddy_lower_frame(uint64_t w, unsigned i, unsigned *kind,
			      unsigned *order)
{
	uint64_t g[BU_ORDER + 1];
	unsigned k = 0;
	*kind = BK_TAIL;
	*order = 0;
	if (bu_code(w, i) == BU_CODE_H) {
		(void)bu_block_order(w, i, &k);
		*kind = BK_ALLOC;
		*order = k;
		return;
	}
	if (bu_code(w, i) != BU_CODE_F)
		return;
	bu_groups(bu_free_bits(w), g);
	for (unsigned j = 0; j <= BU_ORDER; j++)
		if ((bu_maximal(g, j) >> (2 * i)) & 1) {
			*kind = BK_FREE;
			*order = j;
			return;
		}
}

/*
 * The lower level's free blocks, by a scan of the words (a snapshot,
 * O(units)): maximal free blocks of unreserved units are free blocks;
 * those of reserved units are the CPUs' caches (cached_blocks for the
 * cached orders, cached_frames for all).
 */
void buddy_lower_stats(const struct buddy_zone *z, struct buddy_stats *out)
{
	for (uint32_t u = 0; u < z->lower.nunits; u++) {
		/* Relaxed: a snapshot. */
		uint64_t w = lf_load_u64(&z->lower.word[BU_W(u)], LF_RELAXED);
		uint64_t g[BU_ORDER + 1];
		if (w == BU_CORE)
			continue;
		bu_groups(bu_free_bits(w), g);
		for (unsigned j = 0; j <= BU_ORDER; j++) {
			uint64_t n = bu_count(bu_maximal(g, j));
			if (bu_reserved(w)) {
				if (j < BUDDY_CACHE_ORDERS)
					out->cached_blocks[j] += n;
				out->cached_frames += n << j;
			} else {
				out->free_blocks[j] += n;
				out->free_frames += n << j;
			}
		}
	}
}
#endif

int buddy_zone_frame(struct buddy_zone *z, uint64_t addr, unsigned *kind,
		     unsigned *order)
{
	const struct buddy_rgn *r;
	int rc = buddy_addr_check(z, addr, 0, &r);
	if (rc != BUDDY_OK)
		return rc;
	uint32_t x = buddy_addr_idx(r, addr);
#if BUDDY_CORE_SHIFT > 0
	/* Relaxed: a snapshot. */
	uint64_t w = lf_load_u64(&z->lower.word[BU_W(buddy_cx(x))], LF_RELAXED);
	if (w != BU_CORE) {
		buddy_lower_frame(w, x & (BU_FRAMES - 1), kind, order);
		return BUDDY_OK;
	}
#endif
	if (x & (BUDDY_CORE_FRAMES - 1)) { /* inside a core granule */
		*kind = BK_TAIL;
		*order = 0;
		return BUDDY_OK;
	}
	/* Relaxed: a snapshot. */
	uint16_t s = lf_load_u16(buddy_st(z, x), LF_RELAXED);
	*kind = bst_kind(s);
	*order = bst_is_head(s) ? bst_order(s) : 0;
	return BUDDY_OK;
}

/* Relaxed loads of another context's counters: a snapshot. */
static uint64_t buddy_sum(const struct buddy_zone *z, size_t off)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < z->ncpus; i++) {
		const char *c = (const char *)&z->cpus[i];
		sum += lf_load_u64((const lf_atomic_u64 *)(c + off),
				   LF_RELAXED);
	}
	return sum;
}

#define BUDDY_CTR_OFF(i) (offsetof(struct buddy_cpu, ctr) + (i)*8)

void buddy_zone_stats(struct buddy_zone *z, struct buddy_stats *out)
{
	*out = (struct buddy_stats){ .total_frames = z->nframes };
	for (unsigned o = 0; o < BUDDY_ORDERS; o++) {
		out->free_blocks[o] = buddy_sum(
			z, offsetof(struct buddy_cpu, free_delta) + o * 8);
		out->free_frames += out->free_blocks[o] << o;
	}
	for (uint32_t i = 0; i < z->ncpus; i++)
		for (unsigned o = 0; o < BUDDY_CC_ORDERS; o++) {
			/* Relaxed: a snapshot. */
			uint64_t n =
				lf_load_u32(&z->cpus[i].count[o], LF_RELAXED);
			if (o < BUDDY_CACHE_ORDERS)
				out->cached_blocks[o] += n;
			out->cached_frames += n << o;
		}
#if BUDDY_CORE_SHIFT > 0
	buddy_lower_stats(z, out);
#endif
	out->allocs = buddy_sum(z, BUDDY_CTR_OFF(BC_ALLOCS));
	out->frees = buddy_sum(z, BUDDY_CTR_OFF(BC_FREES));
	out->failed = buddy_sum(z, BUDDY_CTR_OFF(BC_FAILED));
	out->merges = buddy_sum(z, BUDDY_CTR_OFF(BC_MERGES));
	out->splits = buddy_sum(z, BUDDY_CTR_OFF(BC_SPLITS));
	out->stale = buddy_sum(z, BUDDY_CTR_OFF(BC_STALE));
	out->moved = buddy_sum(z, BUDDY_CTR_OFF(BC_MOVED));
	out->refills = buddy_sum(z, BUDDY_CTR_OFF(BC_REFILLS));
	out->drains = buddy_sum(z, BUDDY_CTR_OFF(BC_DRAINS));
	out->sweeps = buddy_sum(z, BUDDY_CTR_OFF(BC_SWEEPS));
	out->rejected = buddy_sum(z, BUDDY_CTR_OFF(BC_REJECTED));
	for (unsigned e = 1; e < BUDDY_NERR; e++)
		out->rejected_by[e] =
			buddy_sum(z, BUDDY_CTR_OFF(BC_REJECTED + e));
}

/* Each module has its own name table (CONTRIBUTING.md, "Error codes"). */
const char *buddy_strerror(int err)
{
	static const char *const text[BUDDY_NERR] = {
		"ok",
		"out of memory",
		"invalid argument",
		"address out of range",
		"misaligned address",
		"wrong order",
		"not allocated (double free)",
		"tail frame of a block",
		"range busy",
		"metadata area too small",
		"not supported (never returned now)",
	};
	if (err > 0 || -err >= BUDDY_NERR)
		return "unknown error";
	return text[-err];
}
