/*
 * test_buddy_locked.c: the locked buddy (buddy/buddy_locked.h), the oracle of
 * the model tests. On one thread: metadata sizing and init errors, the greedy
 * initial decomposition (frame by frame), alloc and free of every order,
 * exhaustion and full recovery, alloc_below, alloc_at, runs of 1..70 frames,
 * every class of bad input to free and free_run (its code, and nothing
 * changed), then a long random run against a bitmap model that predicts
 * every result code. buddy_locked_check() must pass after every step. Last, a
 * few threads hammer one zone and claim every frame they are given, so a
 * frame handed out twice is caught.
 *
 * Usage: test_buddy_locked [seed [ops]]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buddy_locked.h"
#include "check.h"

#define FS BUDDY_FRAME_SIZE
#define MAXO BUDDY_MAX_ORDER
#define ERRS (BUDDY_NERR)

static uint64_t frames_of(unsigned order)
{
	return (uint64_t)1 << order;
}

/* splitmix64: a fixed seed, so a failure repeats. */
static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t n)
{
	return rng() % n;
}

/*
 * The main zone: a region starting at an odd pfn with an odd size, a second
 * one adjacent to it (pfn 1002 and 1003 are buddies in pfn but lie in
 * different regions, so they never merge), a hole, and a third region
 * holding an order-11 block and an odd tail.
 */
static const struct buddy_region main_regions[] = {
	{ 3 * FS, 1000 * FS },    /* pfn [3, 1003) */
	{ 1003 * FS, 37 * FS },   /* pfn [1003, 1040), adjacent */
	{ 4096 * FS, 2053 * FS }, /* pfn [4096, 6149) */
};
#define MAIN_NREGIONS 3
#define MAIN_FRAMES 3090
#define HOLE_PFN 2000 /* in no region */

/* The greedy decomposition of the main zone, written out by hand. */
struct head {
	uint64_t pfn;
	unsigned order;
};
static const struct head main_heads[] = {
	{ 3, 0 },    { 4, 2 },    { 8, 3 },    { 16, 4 },   { 32, 5 },
	{ 64, 6 },   { 128, 7 },  { 256, 8 },  { 512, 8 },  { 768, 7 },
	{ 896, 6 },  { 960, 5 },  { 992, 3 },  { 1000, 1 }, { 1002, 0 },
	{ 1003, 0 }, { 1004, 2 }, { 1008, 4 }, { 1024, 4 }, { 4096, 11 },
	{ 6144, 2 }, { 6148, 0 },
};

struct zone {
	struct buddy_locked *l;
	void *meta;
	const struct buddy_region *rg;
	unsigned nrg;
	uint64_t frames;
	uint16_t *init; /* the snapshot right after init */
};

/* Region index holding pfn, or -1. */
static int zone_region(const struct zone *z, uint64_t pfn)
{
	for (unsigned r = 0; r < z->nrg; r++)
		if (pfn >= z->rg[r].base / FS &&
		    pfn < (z->rg[r].base + z->rg[r].size) / FS)
			return (int)r;
	return -1;
}

/* Frame index of pfn (regions one after the other), or -1. */
static int64_t zone_idx(const struct zone *z, uint64_t pfn)
{
	int64_t first = 0;
	for (unsigned r = 0; r < z->nrg; r++) {
		uint64_t b = z->rg[r].base / FS, n = z->rg[r].size / FS;
		if (pfn >= b && pfn < b + n)
			return first + (int64_t)(pfn - b);
		first += (int64_t)n;
	}
	return -1;
}

static uint64_t zone_pfn(const struct zone *z, uint64_t idx)
{
	for (unsigned r = 0; r < z->nrg; r++) {
		uint64_t n = z->rg[r].size / FS;
		if (idx < n)
			return z->rg[r].base / FS + idx;
		idx -= n;
	}
	CHECK_FATAL(!"frame index out of range");
	return 0;
}

/* A snapshot: kind << 8 | order per frame (order 0 for tails). */
static uint16_t *snap_new(const struct zone *z)
{
	uint16_t *s = calloc(z->frames, sizeof(*s));
	CHECK_FATAL(s != NULL);
	return s;
}

static void snap_take(const struct zone *z, uint16_t *s)
{
	for (uint64_t i = 0; i < z->frames; i++) {
		unsigned kind = 0, order = 0;
		int rc = buddy_locked_frame(z->l, zone_pfn(z, i) * FS, &kind,
					    &order);
		if (rc != BUDDY_OK)
			CHECK_EQ(rc, BUDDY_OK);
		if (kind == BUDDY_FRAME_TAIL)
			order = 0;
		s[i] = (uint16_t)(kind << 8 | order);
	}
}

/* -1 if equal, else the first frame index that differs. */
static int64_t snap_diff(const struct zone *z, const uint16_t *a,
			 const uint16_t *b)
{
	for (uint64_t i = 0; i < z->frames; i++)
		if (a[i] != b[i])
			return (int64_t)i;
	return -1;
}

static void zone_ok(const struct zone *z)
{
	uint64_t frame = 0;
	int rc = buddy_locked_check(z->l, &frame);
	if (rc != 0)
		fprintf(stderr, "check: code %d at frame %" PRIu64 "\n", rc,
			frame);
	CHECK_EQ(rc, 0);
}

static struct buddy_stats zone_stats(const struct zone *z)
{
	struct buddy_stats st;
	buddy_locked_stats(z->l, &st);
	return st;
}

/* The state is the initial one again, frame by frame and in the counts. */
static void zone_is_initial(const struct zone *z)
{
	uint16_t *s = snap_new(z);
	snap_take(z, s);
	int64_t d = snap_diff(z, s, z->init);
	if (d >= 0)
		fprintf(stderr, "differs from init at pfn %" PRIu64 "\n",
			zone_pfn(z, (uint64_t)d));
	CHECK_EQ(d, -1);
	free(s);
	struct buddy_stats st = zone_stats(z);
	CHECK_EQ(st.free_frames, z->frames);
	zone_ok(z);
}

static void zone_new(struct zone *z, const struct buddy_region *rg, unsigned n)
{
	size_t size = buddy_locked_meta_size(rg, n);
	CHECK_FATAL(size > 0);
	z->meta = aligned_alloc(64, (size + 63) & ~(size_t)63);
	CHECK_FATAL(z->meta != NULL);
	memset(z->meta, 0xa5, size); /* init must not count on zeroes */
	CHECK_FATAL(buddy_locked_init(&z->l, z->meta, size, rg, n) == BUDDY_OK);
	z->rg = rg;
	z->nrg = n;
	z->frames = 0;
	for (unsigned i = 0; i < n; i++)
		z->frames += rg[i].size / FS;
	z->init = snap_new(z);
	snap_take(z, z->init);
	zone_ok(z);
}

static void zone_delete(struct zone *z)
{
	free(z->init);
	free(z->meta);
}

/* The greedy maximal blocks of every region, computed independently. */
static void expect_greedy(const struct zone *z, uint16_t *exp)
{
	for (uint64_t i = 0; i < z->frames; i++)
		exp[i] = BUDDY_FRAME_TAIL << 8;
	for (unsigned r = 0; r < z->nrg; r++) {
		uint64_t pfn = z->rg[r].base / FS;
		uint64_t end = pfn + z->rg[r].size / FS;
		while (pfn < end) {
			unsigned k = 0;
			while (k < MAXO && pfn % frames_of(k + 1) == 0 &&
			       pfn + frames_of(k + 1) <= end)
				k++;
			exp[zone_idx(z, pfn)] =
				(uint16_t)(BUDDY_FRAME_FREE << 8 | k);
			pfn += frames_of(k);
		}
	}
}

/* A rejected or failed call: its code, and nothing else changed. */
struct before {
	uint16_t *snap;
	struct buddy_stats st;
};

static void before_take(const struct zone *z, struct before *b)
{
	b->snap = snap_new(z);
	snap_take(z, b->snap);
	b->st = zone_stats(z);
}

static void after_reject(const struct zone *z, struct before *b, int got,
			 int want, int line)
{
	if (got != want)
		fprintf(stderr, "line %d: got %d, want %d\n", line, got, want);
	CHECK_EQ(got, want);
	uint16_t *s = snap_new(z);
	snap_take(z, s);
	CHECK_EQ(snap_diff(z, s, b->snap), -1);
	free(s);
	free(b->snap);
	struct buddy_stats st = zone_stats(z);
	CHECK_EQ(st.free_frames, b->st.free_frames);
	CHECK(memcmp(st.free_blocks, b->st.free_blocks,
		     sizeof(st.free_blocks)) == 0);
	CHECK_EQ(st.allocs, b->st.allocs);
	CHECK_EQ(st.frees, b->st.frees);
	CHECK_EQ(st.merges, b->st.merges);
	CHECK_EQ(st.splits, b->st.splits);
	bool failed = want == BUDDY_ENOMEM || want == BUDDY_EBUSY;
	CHECK_EQ(st.failed, b->st.failed + failed);
	CHECK_EQ(st.rejected, b->st.rejected + !failed);
	if (!failed)
		CHECK_EQ(st.rejected_by[-want], b->st.rejected_by[-want] + 1);
	zone_ok(z);
}

#define REJECT(z, call, want)                                                  \
	do {                                                                   \
		struct before b_;                                              \
		before_take((z), &b_);                                         \
		int rc_ = (call);                                              \
		after_reject((z), &b_, rc_, (want), __LINE__);                 \
	} while (0)

static void check_frame(const struct zone *z, uint64_t pfn, unsigned kind,
			unsigned order)
{
	unsigned k = 0, o = 0;
	CHECK_EQ(buddy_locked_frame(z->l, pfn * FS, &k, &o), BUDDY_OK);
	if (k != kind || (kind != BUDDY_FRAME_TAIL && o != order))
		fprintf(stderr,
			"pfn %" PRIu64 ": kind %u order %u, want %u %u\n", pfn,
			k, o, kind, order);
	CHECK_EQ(k, kind);
	if (kind != BUDDY_FRAME_TAIL)
		CHECK_EQ(o, order);
}

/* Metadata sizing and every init error. */
static void test_meta_init(const struct buddy_region *ok, size_t size,
			   const struct buddy_region (*bad)[2], unsigned nbad,
			   const struct buddy_region *unsorted,
			   const struct buddy_region *overlap);

/* Metadata sizing: 0 for every class of invalid regions. */
static void test_meta(void)
{
	struct buddy_region ok[] = { { 0, 64 * FS }, { 64 * FS, 64 * FS } };
	size_t s1 = buddy_locked_meta_size(ok, 1);
	size_t s2 = buddy_locked_meta_size(ok, 2);
	CHECK(s1 > 0);
	CHECK(s2 > s1);
	const struct buddy_region bad[][2] = {
		{ { FS + 1, FS }, { 0, 0 } }, /* base unaligned */
		{ { FS, FS + 1 }, { 0, 0 } }, /* size unaligned */
		{ { FS, 0 }, { 0, 0 } },      /* empty */
		{ { 0, ((uint64_t)1 << 32) * FS }, { 0, 0 } }, /* 2^32 frames */
		{ { 0, (uint64_t)UINT32_MAX * FS }, { 0, 0 } },
		{ { UINT64_MAX - FS + 1, FS }, { 0, 0 } }, /* end wraps */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(buddy_locked_meta_size(bad[i], 1), 0);
	const struct buddy_region unsorted[] = { { 8 * FS, FS }, { 0, FS } };
	const struct buddy_region overlap[] = { { 0, 2 * FS }, { FS, FS } };
	const struct buddy_region second_bad[] = { { 0, FS }, { 4 * FS, 0 } };
	CHECK_EQ(buddy_locked_meta_size(unsorted, 2), 0);
	CHECK_EQ(buddy_locked_meta_size(overlap, 2), 0);
	CHECK_EQ(buddy_locked_meta_size(second_bad, 2), 0);
	CHECK_EQ(buddy_locked_meta_size(NULL, 1), 0);
	CHECK_EQ(buddy_locked_meta_size(ok, 0), 0);
	const struct buddy_region most[] = { { 0, ((uint64_t)UINT32_MAX - 1) *
							  FS } };
	CHECK(buddy_locked_meta_size(most, 1) > 0); /* < BUDDY_MAX_FRAMES */

	struct buddy_region many[BUDDY_MAX_REGIONS + 1];
	for (unsigned i = 0; i <= BUDDY_MAX_REGIONS; i++)
		many[i] = (struct buddy_region){ 2 * i * FS, FS };
	CHECK(buddy_locked_meta_size(many, BUDDY_MAX_REGIONS) > 0);
	CHECK_EQ(buddy_locked_meta_size(many, BUDDY_MAX_REGIONS + 1), 0);
	test_meta_init(ok, s2, bad, sizeof(bad) / sizeof(bad[0]), unsorted,
		       overlap);
}

/* Every init error, and l untouched until the init that succeeds. */
static void test_meta_init(const struct buddy_region *ok, size_t size,
			   const struct buddy_region (*bad)[2], unsigned nbad,
			   const struct buddy_region *unsorted,
			   const struct buddy_region *overlap)
{
	char *meta = aligned_alloc(64, (size + 64 + 63) & ~(size_t)63);
	CHECK_FATAL(meta != NULL);
	struct buddy_locked *l = NULL;
	CHECK_EQ(buddy_locked_init(NULL, meta, size, ok, 2), BUDDY_EINVAL);
	CHECK_EQ(buddy_locked_init(&l, NULL, size, ok, 2), BUDDY_EINVAL);
	CHECK_EQ(buddy_locked_init(&l, meta + 8, size, ok, 2), BUDDY_EINVAL);
	CHECK_EQ(buddy_locked_init(&l, meta, size - 1, ok, 2), BUDDY_ENOSPC);
	CHECK_EQ(buddy_locked_init(&l, meta, size, NULL, 2), BUDDY_EINVAL);
	CHECK_EQ(buddy_locked_init(&l, meta, size, ok, 0), BUDDY_EINVAL);
	CHECK_EQ(buddy_locked_init(&l, meta, size, unsorted, 2), BUDDY_EINVAL);
	CHECK_EQ(buddy_locked_init(&l, meta, size, overlap, 2), BUDDY_EINVAL);
	for (unsigned i = 0; i < nbad; i++)
		CHECK_EQ(buddy_locked_init(&l, meta, size, bad[i], 1),
			 BUDDY_EINVAL);
	CHECK(l == NULL);
	CHECK_EQ(buddy_locked_init(&l, meta, size, ok, 2), BUDDY_OK);
	CHECK(l != NULL);
	CHECK_EQ(buddy_locked_check(l, NULL), 0);
	free(meta);
}

/* 32 one-frame regions, each beside a hole: every buddy is out of range. */
static void test_max_regions(void)
{
	static struct buddy_region rg[BUDDY_MAX_REGIONS];
	for (unsigned i = 0; i < BUDDY_MAX_REGIONS; i++)
		rg[i] = (struct buddy_region){ (2 * i + 1) * FS, FS };
	struct zone z;
	zone_new(&z, rg, BUDDY_MAX_REGIONS);
	uint64_t addr;
	for (unsigned i = 0; i < BUDDY_MAX_REGIONS; i++) {
		CHECK_EQ(buddy_locked_alloc(z.l, 0, &addr), BUDDY_OK);
		CHECK_EQ(addr % (2 * FS), FS);
	}
	REJECT(&z, buddy_locked_alloc(z.l, 0, &addr), BUDDY_ENOMEM);
	for (unsigned i = 0; i < BUDDY_MAX_REGIONS; i++) {
		CHECK_EQ(buddy_locked_free(z.l, rg[i].base, 0), BUDDY_OK);
		zone_ok(&z);
	}
	CHECK_EQ(zone_stats(&z).merges, 0);
	zone_is_initial(&z);
	zone_delete(&z);
}

static void test_init(const struct zone *z)
{
	uint16_t *exp = snap_new(z);
	for (uint64_t i = 0; i < z->frames; i++)
		exp[i] = BUDDY_FRAME_TAIL << 8;
	uint64_t blocks[BUDDY_ORDERS] = { 0 };
	for (unsigned i = 0; i < sizeof(main_heads) / sizeof(main_heads[0]);
	     i++) {
		const struct head *h = &main_heads[i];
		exp[zone_idx(z, h->pfn)] =
			(uint16_t)(BUDDY_FRAME_FREE << 8 | h->order);
		blocks[h->order]++;
	}
	CHECK_EQ(snap_diff(z, z->init, exp), -1);
	expect_greedy(z, exp);
	CHECK_EQ(snap_diff(z, z->init, exp), -1);
	free(exp);
	struct buddy_stats st = zone_stats(z);
	CHECK_EQ(st.total_frames, MAIN_FRAMES);
	CHECK_EQ(st.free_frames, MAIN_FRAMES);
	CHECK(memcmp(st.free_blocks, blocks, sizeof(blocks)) == 0);
	CHECK_EQ(st.cached_frames, 0);
	CHECK_EQ(st.allocs + st.frees + st.failed + st.rejected, 0);
	CHECK_EQ(st.merges + st.splits, 0);
	unsigned kind, order;
	CHECK_EQ(buddy_locked_frame(z->l, HOLE_PFN * FS, &kind, &order),
		 BUDDY_ERANGE);
	CHECK_EQ(buddy_locked_frame(z->l, 0, &kind, &order), BUDDY_ERANGE);
	CHECK_EQ(buddy_locked_frame(z->l, 1040 * FS, &kind, &order),
		 BUDDY_ERANGE);
	CHECK_EQ(buddy_locked_frame(z->l, 6149 * FS, &kind, &order),
		 BUDDY_ERANGE);
	CHECK_EQ(buddy_locked_frame(z->l, HOLE_PFN * FS + 1, &kind, &order),
		 BUDDY_ERANGE);
	CHECK_EQ(buddy_locked_frame(z->l, 3 * FS + 1, &kind, &order),
		 BUDDY_EALIGN);
	CHECK_EQ(buddy_locked_frame(z->l, 1039 * FS, &kind, &order), BUDDY_OK);
	CHECK_EQ(kind, BUDDY_FRAME_TAIL);
}

/* An allocated block: aligned, in one region, its head ALLOC, tails TAIL. */
static void check_block(const struct zone *z, uint64_t addr, unsigned order)
{
	uint64_t pfn = addr / FS;
	CHECK_EQ(addr % FS, 0);
	CHECK_EQ(pfn % frames_of(order), 0);
	int r = zone_region(z, pfn);
	CHECK(r >= 0);
	CHECK_EQ(zone_region(z, pfn + frames_of(order) - 1), r);
	check_frame(z, pfn, BUDDY_FRAME_ALLOC, order);
	for (uint64_t t = 1; t < frames_of(order) && t < 64; t++)
		check_frame(z, pfn + t, BUDDY_FRAME_TAIL, 0);
}

static void test_every_order(struct zone *z)
{
	uint64_t addr;
	for (unsigned k = 0; k <= 11; k++) {
		struct buddy_stats st = zone_stats(z);
		CHECK_EQ(buddy_locked_alloc(z->l, k, &addr), BUDDY_OK);
		check_block(z, addr, k);
		zone_ok(z);
		struct buddy_stats st2 = zone_stats(z);
		CHECK_EQ(st2.allocs, st.allocs + 1);
		CHECK_EQ(st2.free_frames, st.free_frames - frames_of(k));
		CHECK_EQ(buddy_locked_free(z->l, addr, k), BUDDY_OK);
		CHECK_EQ(zone_stats(z).frees, st.frees + 1);
		zone_is_initial(z);
	}
	for (unsigned k = 12; k <= MAXO; k++)
		REJECT(z, buddy_locked_alloc(z->l, k, &addr), BUDDY_ENOMEM);
	REJECT(z, buddy_locked_alloc(z->l, MAXO + 1, &addr), BUDDY_EINVAL);
	REJECT(z, buddy_locked_alloc(z->l, 0, NULL), BUDDY_EINVAL);
	zone_is_initial(z);
}

static void shuffle(uint64_t *a, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rnd(i);
		uint64_t t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

/* Allocate orders from orders[] (each until ENOMEM), free all, shuffled. */
static void exhaust(struct zone *z, const unsigned *orders, unsigned n,
		    uint64_t limit)
{
	uint64_t *held = calloc(z->frames, sizeof(*held)); /* addr | order */
	bool *used = calloc(z->frames, sizeof(*used));
	CHECK_FATAL(held && used);
	size_t nheld = 0;
	uint64_t frames = 0, addr;
	for (unsigned i = 0; i < n; i++) {
		unsigned k = orders[i];
		while (buddy_locked_alloc_below(z->l, k, limit, &addr) ==
		       BUDDY_OK) {
			CHECK((addr / FS + frames_of(k)) * FS <= limit);
			check_block(z, addr, k);
			for (uint64_t f = 0; f < frames_of(k); f++) {
				int64_t idx = zone_idx(z, addr / FS + f);
				CHECK(idx >= 0 && !used[idx]);
				if (idx >= 0)
					used[idx] = true;
			}
			held[nheld++] = addr | k;
			frames += frames_of(k);
		}
		REJECT(z, buddy_locked_alloc_below(z->l, k, limit, &addr),
		       BUDDY_ENOMEM);
	}
	if (limit == UINT64_MAX) {
		CHECK_EQ(frames, z->frames);
		CHECK_EQ(zone_stats(z).free_frames, 0);
	}
	shuffle(held, nheld);
	for (size_t i = 0; i < nheld; i++) {
		uint64_t a = held[i] & ~(FS - 1);
		CHECK_EQ(buddy_locked_free(z->l, a, (unsigned)(held[i] & 63)),
			 BUDDY_OK);
		if (i % 64 == 0)
			zone_ok(z);
	}
	zone_is_initial(z);
	free(held);
	free(used);
}

static void test_exhaustion(struct zone *z)
{
	static const unsigned only0[] = { 0 };
	static const unsigned mixed[] = { 5, 3, 1, 0 };
	static const unsigned big[] = { 11, 8, 2, 0 };
	exhaust(z, only0, 1, UINT64_MAX);
	exhaust(z, mixed, 4, UINT64_MAX);
	exhaust(z, big, 4, UINT64_MAX);
}

static void test_alloc_below(struct zone *z)
{
	static const unsigned only0[] = { 0 };
	static const unsigned mixed[] = { 4, 0 };
	uint64_t limit = 1040 * FS, addr; /* end of the second region */
	exhaust(z, only0, 1, limit);
	exhaust(z, mixed, 2, limit);
	exhaust(z, only0, 1, 5000 * FS);
	/* Only [3, 4) ends at or below pfn 4. */
	REJECT(z, buddy_locked_alloc_below(z->l, 0, 3 * FS, &addr),
	       BUDDY_ENOMEM);
	REJECT(z, buddy_locked_alloc_below(z->l, 0, 0, &addr), BUDDY_ENOMEM);
	REJECT(z, buddy_locked_alloc_below(z->l, 1, 4 * FS, &addr),
	       BUDDY_ENOMEM);
	REJECT(z, buddy_locked_alloc_below(z->l, MAXO + 1, UINT64_MAX, &addr),
	       BUDDY_EINVAL);
	CHECK_EQ(buddy_locked_alloc_below(z->l, 0, 4 * FS, &addr), BUDDY_OK);
	CHECK_EQ(addr, 3 * FS);
	CHECK_EQ(buddy_locked_free(z->l, addr, 0), BUDDY_OK);
	/* Below 4097: only frame 4096 fits once the low regions are full;
	 * the order-11 block is split keeping its lowest frame. */
	uint64_t low[1037];
	for (unsigned i = 0; i < 1037; i++)
		CHECK_EQ(buddy_locked_alloc_below(z->l, 0, limit, &low[i]),
			 BUDDY_OK);
	uint64_t splits = zone_stats(z).splits;
	CHECK_EQ(buddy_locked_alloc_below(z->l, 0, 4097 * FS, &addr), BUDDY_OK);
	CHECK_EQ(addr, 4096 * FS);
	CHECK_EQ(zone_stats(z).splits, splits + 11);
	check_frame(z, 4097, BUDDY_FRAME_FREE, 0);
	check_frame(z, 4098, BUDDY_FRAME_FREE, 1);
	check_frame(z, 5120, BUDDY_FRAME_FREE, 10);
	zone_ok(z);
	CHECK_EQ(buddy_locked_free(z->l, addr, 0), BUDDY_OK);
	for (unsigned i = 0; i < 1037; i++)
		CHECK_EQ(buddy_locked_free(z->l, low[i], 0), BUDDY_OK);
	zone_is_initial(z);
}

static void test_alloc_at(struct zone *z)
{
	struct buddy_stats st = zone_stats(z);
	CHECK_EQ(buddy_locked_alloc_at(z->l, 4101 * FS, 0), BUDDY_OK);
	CHECK_EQ(zone_stats(z).splits, st.splits + 11);
	CHECK_EQ(zone_stats(z).allocs, st.allocs + 1);
	static const struct head around[] = {
		{ 4096, 2 }, { 4100, 0 }, { 4102, 1 },  { 4104, 3 },
		{ 4112, 4 }, { 4128, 5 }, { 4160, 6 },  { 4224, 7 },
		{ 4352, 8 }, { 4608, 9 }, { 5120, 10 },
	};
	for (unsigned i = 0; i < sizeof(around) / sizeof(around[0]); i++)
		check_frame(z, around[i].pfn, BUDDY_FRAME_FREE,
			    around[i].order);
	check_frame(z, 4101, BUDDY_FRAME_ALLOC, 0);
	zone_ok(z);
	REJECT(z, buddy_locked_alloc_at(z->l, 4101 * FS, 0), BUDDY_EBUSY);
	REJECT(z, buddy_locked_alloc_at(z->l, 4096 * FS, 3), BUDDY_EBUSY);
	REJECT(z, buddy_locked_alloc_at(z->l, 4100 * FS, 1), BUDDY_EBUSY);
	REJECT(z, buddy_locked_alloc_at(z->l, 4096 * FS, 11), BUDDY_EBUSY);
	REJECT(z, buddy_locked_alloc_at(z->l, 4097 * FS, 1), BUDDY_EALIGN);
	REJECT(z, buddy_locked_alloc_at(z->l, 4096 * FS + 8, 0), BUDDY_EALIGN);
	REJECT(z, buddy_locked_alloc_at(z->l, HOLE_PFN * FS, 0), BUDDY_ERANGE);
	REJECT(z, buddy_locked_alloc_at(z->l, HOLE_PFN * FS + 8, 0),
	       BUDDY_ERANGE);
	REJECT(z, buddy_locked_alloc_at(z->l, 1024 * FS, 5), BUDDY_ERANGE);
	REJECT(z, buddy_locked_alloc_at(z->l, 6144 * FS, 3), BUDDY_ERANGE);
	REJECT(z, buddy_locked_alloc_at(z->l, 1002 * FS, 1), BUDDY_ERANGE);
	REJECT(z, buddy_locked_alloc_at(z->l, 4096 * FS, MAXO + 1),
	       BUDDY_EINVAL);
	CHECK_EQ(buddy_locked_alloc_at(z->l, 4100 * FS, 0), BUDDY_OK);
	CHECK_EQ(buddy_locked_alloc_at(z->l, 4102 * FS, 1), BUDDY_OK);
	CHECK_EQ(buddy_locked_alloc_at(z->l, 4096 * FS, 2), BUDDY_OK);
	CHECK_EQ(buddy_locked_alloc_at(z->l, 4104 * FS, 3), BUDDY_OK);
	REJECT(z, buddy_locked_alloc_at(z->l, 4104 * FS + 2 * FS, 0),
	       BUDDY_EBUSY); /* a tail of an allocated block */
	zone_ok(z);
	CHECK_EQ(buddy_locked_free(z->l, 4096 * FS, 2), BUDDY_OK);
	CHECK_EQ(buddy_locked_free(z->l, 4101 * FS, 0), BUDDY_OK);
	CHECK_EQ(buddy_locked_free(z->l, 4104 * FS, 3), BUDDY_OK);
	CHECK_EQ(buddy_locked_free(z->l, 4100 * FS, 0), BUDDY_OK);
	CHECK_EQ(buddy_locked_free(z->l, 4102 * FS, 1), BUDDY_OK);
	zone_is_initial(z);
}

/* Whole free blocks, with no split; then every frame one by one. */
static void test_alloc_at_whole(struct zone *z)
{
	CHECK_EQ(buddy_locked_alloc_at(z->l, 4096 * FS, 11), BUDDY_OK);
	CHECK_EQ(buddy_locked_alloc_at(z->l, 1002 * FS, 0), BUDDY_OK);
	CHECK_EQ(buddy_locked_alloc_at(z->l, 1003 * FS, 0), BUDDY_OK);
	CHECK_EQ(buddy_locked_free(z->l, 1002 * FS, 0), BUDDY_OK);
	CHECK_EQ(buddy_locked_free(z->l, 1003 * FS, 0), BUDDY_OK);
	CHECK_EQ(buddy_locked_free(z->l, 4096 * FS, 11), BUDDY_OK);
	for (uint64_t i = 0; i < z->frames; i++)
		CHECK_EQ(buddy_locked_alloc_at(z->l, zone_pfn(z, i) * FS, 0),
			 BUDDY_OK);
	CHECK_EQ(zone_stats(z).free_frames, 0);
	zone_ok(z);
	for (uint64_t i = z->frames; i-- > 0;)
		CHECK_EQ(buddy_locked_free(z->l, zone_pfn(z, i) * FS, 0),
			 BUDDY_OK);
	zone_is_initial(z);
}

/* The pieces of a run of n at pfn are ALLOC, the rest of its block free. */
static void check_run(const struct zone *z, uint64_t pfn, uint64_t n)
{
	unsigned kk = 0;
	while (frames_of(kk) < n)
		kk++;
	CHECK_EQ(pfn % frames_of(kk), 0);
	uint64_t off = 0;
	for (unsigned b = 64; b-- > 0;) {
		if ((n >> b & 1) == 0)
			continue;
		check_frame(z, pfn + off, BUDDY_FRAME_ALLOC, b);
		for (uint64_t t = 1; t < frames_of(b); t++)
			check_frame(z, pfn + off + t, BUDDY_FRAME_TAIL, 0);
		off += frames_of(b);
	}
	for (uint64_t f = n; f < frames_of(kk); f++) {
		unsigned kind, order;
		CHECK_EQ(
			buddy_locked_frame(z->l, (pfn + f) * FS, &kind, &order),
			BUDDY_OK);
		CHECK(kind == BUDDY_FRAME_FREE ||
		      (kind == BUDDY_FRAME_TAIL && f != n));
	}
}

static void test_runs(struct zone *z)
{
	uint64_t addr;
	for (uint64_t n = 1; n <= 70; n++) {
		struct buddy_stats st = zone_stats(z);
		CHECK_EQ(buddy_locked_alloc_run(z->l, n, &addr), BUDDY_OK);
		check_run(z, addr / FS, n);
		zone_ok(z);
		CHECK_EQ(zone_stats(z).allocs, st.allocs + 1);
		CHECK_EQ(zone_stats(z).free_frames, st.free_frames - n);
		CHECK_EQ(buddy_locked_free_run(z->l, addr, n), BUDDY_OK);
		CHECK_EQ(zone_stats(z).frees, st.frees + 1);
		zone_is_initial(z);
	}
	/* All of 1..70 held together, as far as they fit, freed shuffled. */
	uint64_t held[71];
	size_t nheld = 0;
	for (uint64_t n = 1; n <= 70; n++)
		if (buddy_locked_alloc_run(z->l, n, &addr) == BUDDY_OK) {
			check_run(z, addr / FS, n);
			held[nheld++] = addr | n;
		}
	CHECK(nheld > 30);
	zone_ok(z);
	shuffle(held, nheld);
	for (size_t i = 0; i < nheld; i++)
		CHECK_EQ(buddy_locked_free_run(z->l, held[i] & ~(FS - 1),
					       held[i] & (FS - 1)),
			 BUDDY_OK);
	zone_is_initial(z);
	REJECT(z, buddy_locked_alloc_run(z->l, 0, &addr), BUDDY_EINVAL);
	REJECT(z, buddy_locked_alloc_run(z->l, frames_of(MAXO) + 1, &addr),
	       BUDDY_EINVAL);
	REJECT(z, buddy_locked_alloc_run(z->l, 2049, &addr), BUDDY_ENOMEM);
	REJECT(z, buddy_locked_alloc_run(z->l, 3, NULL), BUDDY_EINVAL);
	CHECK_EQ(buddy_locked_alloc_run(z->l, 2048, &addr), BUDDY_OK);
	CHECK_EQ(addr, 4096 * FS);
	CHECK_EQ(buddy_locked_free_run(z->l, addr, 2048), BUDDY_OK);
	zone_is_initial(z);
}

static void test_free_run_errors(struct zone *z)
{
	uint64_t a;
	CHECK_EQ(buddy_locked_alloc_run(z->l, 5, &a), BUDDY_OK);
	REJECT(z, buddy_locked_free_run(z->l, a, 0), BUDDY_EINVAL);
	REJECT(z, buddy_locked_free_run(z->l, a, frames_of(MAXO) + 1),
	       BUDDY_EINVAL);
	REJECT(z, buddy_locked_free_run(z->l, HOLE_PFN * FS, 5), BUDDY_ERANGE);
	REJECT(z, buddy_locked_free_run(z->l, HOLE_PFN * FS + 1, 5),
	       BUDDY_ERANGE);
	REJECT(z, buddy_locked_free_run(z->l, a + 1, 5), BUDDY_EALIGN);
	REJECT(z, buddy_locked_free_run(z->l, a + 2 * FS, 5), BUDDY_EALIGN);
	REJECT(z, buddy_locked_free_run(z->l, a + 4 * FS, 5), BUDDY_EORDER);
	REJECT(z, buddy_locked_free_run(z->l, a, 6), BUDDY_EORDER);
	REJECT(z, buddy_locked_free_run(z->l, a, 7), BUDDY_EORDER);
	REJECT(z, buddy_locked_free_run(z->l, a, 3), BUDDY_EORDER);
	REJECT(z, buddy_locked_free_run(z->l, a, 13), BUDDY_EORDER);
	REJECT(z, buddy_locked_free_run(z->l, a + FS, 1), BUDDY_ETAIL);
	REJECT(z, buddy_locked_free_run(z->l, a + 5 * FS, 1), BUDDY_EDOUBLE);
	CHECK_EQ(buddy_locked_free_run(z->l, a, 5), BUDDY_OK);
	REJECT(z, buddy_locked_free_run(z->l, a, 5), BUDDY_EDOUBLE);
	zone_is_initial(z);
	/* A later piece in no region; a piece that crosses into the adjacent
	 * region; then a run of two pieces that checks out. */
	CHECK_EQ(buddy_locked_alloc_at(z->l, 1032 * FS, 3), BUDDY_OK);
	REJECT(z, buddy_locked_free_run(z->l, 1032 * FS, 12), BUDDY_ERANGE);
	CHECK_EQ(buddy_locked_free(z->l, 1032 * FS, 3), BUDDY_OK);
	CHECK_EQ(buddy_locked_alloc_at(z->l, 1002 * FS, 0), BUDDY_OK);
	REJECT(z, buddy_locked_free_run(z->l, 1002 * FS, 2), BUDDY_ERANGE);
	CHECK_EQ(buddy_locked_alloc_at(z->l, 1000 * FS, 1), BUDDY_OK);
	CHECK_EQ(buddy_locked_alloc_at(z->l, 1003 * FS, 0), BUDDY_OK);
	REJECT(z, buddy_locked_free_run(z->l, 1000 * FS, 4), BUDDY_ERANGE);
	CHECK_EQ(buddy_locked_free_run(z->l, 1000 * FS, 3), BUDDY_OK);
	CHECK_EQ(buddy_locked_free(z->l, 1003 * FS, 0), BUDDY_OK);
	zone_is_initial(z);
}

/* Every class of bad free, in the documented order of precedence. */
static void test_free_errors(struct zone *z)
{
	CHECK_EQ(buddy_locked_alloc_at(z->l, 8 * FS, 3), BUDDY_OK);
	uint64_t a = 8 * FS, hole = HOLE_PFN * FS;
	REJECT(z, buddy_locked_free(z->l, a, MAXO + 1), BUDDY_EINVAL);
	REJECT(z, buddy_locked_free(z->l, hole + 1, MAXO + 1), BUDDY_EINVAL);
	REJECT(z, buddy_locked_free(z->l, hole, 0), BUDDY_ERANGE);
	REJECT(z, buddy_locked_free(z->l, hole + 1, 3), BUDDY_ERANGE);
	REJECT(z, buddy_locked_free(z->l, 0, 0), BUDDY_ERANGE);
	REJECT(z, buddy_locked_free(z->l, UINT64_MAX & ~(FS - 1), 0),
	       BUDDY_ERANGE);
	REJECT(z, buddy_locked_free(z->l, 1040 * FS, 0), BUDDY_ERANGE);
	REJECT(z, buddy_locked_free(z->l, 1024 * FS, 5), BUDDY_ERANGE);
	REJECT(z, buddy_locked_free(z->l, 1002 * FS, 1), BUDDY_ERANGE);
	REJECT(z, buddy_locked_free(z->l, 1024 * FS + 1, 5), BUDDY_EALIGN);
	REJECT(z, buddy_locked_free(z->l, a + 1, 3), BUDDY_EALIGN);
	REJECT(z, buddy_locked_free(z->l, a + 100, 0), BUDDY_EALIGN);
	REJECT(z, buddy_locked_free(z->l, a + 4 * FS, 3), BUDDY_EALIGN);
	REJECT(z, buddy_locked_free(z->l, a, 4), BUDDY_EALIGN);
	REJECT(z, buddy_locked_free(z->l, a + FS, 0), BUDDY_ETAIL);
	REJECT(z, buddy_locked_free(z->l, a + 2 * FS, 1), BUDDY_ETAIL);
	REJECT(z, buddy_locked_free(z->l, a + 4 * FS, 2), BUDDY_ETAIL);
	REJECT(z, buddy_locked_free(z->l, a + 7 * FS, 0), BUDDY_ETAIL);
	REJECT(z, buddy_locked_free(z->l, 4 * FS, 2), BUDDY_EDOUBLE);
	REJECT(z, buddy_locked_free(z->l, 4 * FS, 1), BUDDY_EDOUBLE);
	REJECT(z, buddy_locked_free(z->l, 5 * FS, 0), BUDDY_EDOUBLE);
	REJECT(z, buddy_locked_free(z->l, 20 * FS, 2), BUDDY_EDOUBLE);
	REJECT(z, buddy_locked_free(z->l, 4096 * FS, 11), BUDDY_EDOUBLE);
	REJECT(z, buddy_locked_free(z->l, 4096 * FS, 0), BUDDY_EDOUBLE);
	REJECT(z, buddy_locked_free(z->l, a, 2), BUDDY_EORDER);
	REJECT(z, buddy_locked_free(z->l, a, 0), BUDDY_EORDER);
	CHECK_EQ(buddy_locked_free(z->l, a, 3), BUDDY_OK);
	REJECT(z, buddy_locked_free(z->l, a, 3), BUDDY_EDOUBLE);
	REJECT(z, buddy_locked_free(z->l, a + FS, 0), BUDDY_EDOUBLE);
	zone_is_initial(z);
	/* The rejection counters, by class. */
	struct buddy_stats st = zone_stats(z);
	uint64_t sum = 0;
	for (unsigned e = 0; e < ERRS; e++)
		sum += st.rejected_by[e];
	CHECK_EQ(sum, st.rejected);
	CHECK_EQ(st.rejected_by[0], 0);
	CHECK_EQ(st.rejected_by[-BUDDY_ENOMEM], 0);
	CHECK_EQ(st.rejected_by[-BUDDY_EBUSY], 0);
}

/* White box: buddy_locked_check() notices a corrupted state byte. The
 * state array is the last nframes bytes of the metadata (buddy_locked.c). */
static void test_check_detects(struct zone *z)
{
	uint8_t *state = (uint8_t *)z->meta +
			 buddy_locked_meta_size(z->rg, z->nrg) - z->frames;
	int64_t tail = zone_idx(z, 5), head = zone_idx(z, 4);
	uint8_t saved = state[tail];
	uint64_t frame = 0;
	state[tail] = state[head];
	CHECK(buddy_locked_check(z->l, &frame) != 0);
	state[tail] = saved;
	saved = state[head];
	state[head] = (uint8_t)(saved + 1); /* free, order 3: on list 2 */
	CHECK(buddy_locked_check(z->l, &frame) != 0);
	CHECK_EQ(frame, head);
	state[head] = saved;
	state[head] = (uint8_t)(saved | 0x60); /* kind 3: no such kind */
	CHECK(buddy_locked_check(z->l, &frame) != 0);
	state[head] = saved;
	zone_is_initial(z);
	/* An allocated head turned free behind the lists' back. */
	CHECK_EQ(buddy_locked_alloc_at(z->l, 4096 * FS, 0), BUDDY_OK);
	int64_t a = zone_idx(z, 4096);
	saved = state[a];
	state[a] = state[zone_idx(z, 4097)];
	CHECK(buddy_locked_check(z->l, &frame) != 0);
	CHECK_EQ(frame, a);
	state[a] = saved;
	zone_ok(z);
	CHECK_EQ(buddy_locked_free(z->l, 4096 * FS, 0), BUDDY_OK);
	zone_is_initial(z);
}

/* One region of 2^20 + 3 frames around a whole order-20 block. */
static void test_max_order(void)
{
	const struct buddy_region rg[] = { { (frames_of(MAXO) - 1) * FS,
					     (frames_of(MAXO) + 3) * FS } };
	struct zone z;
	zone_new(&z, rg, 1);
	uint16_t *exp = snap_new(&z);
	expect_greedy(&z, exp);
	CHECK_EQ(snap_diff(&z, z.init, exp), -1);
	free(exp);
	check_frame(&z, frames_of(MAXO) - 1, BUDDY_FRAME_FREE, 0);
	check_frame(&z, frames_of(MAXO), BUDDY_FRAME_FREE, MAXO);
	check_frame(&z, 2 * frames_of(MAXO), BUDDY_FRAME_FREE, 1);
	uint64_t addr;
	CHECK_EQ(buddy_locked_alloc(z.l, MAXO, &addr), BUDDY_OK);
	CHECK_EQ(addr, frames_of(MAXO) * FS);
	REJECT(&z, buddy_locked_alloc(z.l, MAXO, &addr), BUDDY_ENOMEM);
	REJECT(&z, buddy_locked_alloc_run(z.l, 3, &addr), BUDDY_ENOMEM);
	CHECK_EQ(buddy_locked_free(z.l, addr, MAXO), BUDDY_OK);
	zone_is_initial(&z);
	CHECK_EQ(buddy_locked_alloc_run(z.l, frames_of(MAXO), &addr), BUDDY_OK);
	CHECK_EQ(buddy_locked_free_run(z.l, addr, frames_of(MAXO)), BUDDY_OK);
	CHECK_EQ(buddy_locked_alloc_run(z.l, frames_of(MAXO) - 1, &addr),
		 BUDDY_OK);
	zone_ok(&z);
	CHECK_EQ(buddy_locked_free_run(z.l, addr, frames_of(MAXO) - 1),
		 BUDDY_OK);
	/* One frame in the middle: 20 splits, then 20 merges back. */
	CHECK_EQ(buddy_locked_alloc_at(z.l, frames_of(MAXO) * FS + 77 * FS, 0),
		 BUDDY_OK);
	CHECK_EQ(zone_stats(&z).free_blocks[MAXO], 0);
	CHECK_EQ(buddy_locked_free(z.l, frames_of(MAXO) * FS + 77 * FS, 0),
		 BUDDY_OK);
	zone_is_initial(&z);
	zone_delete(&z);
}

/*
 * The random run against a model: one bool per frame (allocated or not),
 * the order of each allocated head, and the allocations held. Every result
 * code is predicted from the model; allocations are checked to hand out
 * only frames the model has free, and ENOMEM only when no aligned free
 * range of the order exists.
 */
struct held {
	uint64_t pfn, n;
	bool run;
};

struct model {
	const struct zone *z;
	bool *used;
	int8_t *head; /* order of the allocated block headed here, or -1 */
	struct held *held;
	size_t nheld;
	uint64_t nfree, allocs, frees, failed, rejected;
};

static int model_locate(const struct model *m, uint64_t addr, unsigned order)
{
	if (order > MAXO)
		return BUDDY_EINVAL;
	uint64_t pfn = addr / FS;
	int r = zone_region(m->z, pfn);
	if (r < 0)
		return BUDDY_ERANGE;
	if (addr % FS != 0 || pfn % frames_of(order) != 0)
		return BUDDY_EALIGN;
	if (zone_region(m->z, pfn + frames_of(order) - 1) != r)
		return BUDDY_ERANGE;
	return BUDDY_OK;
}

static int model_free_rule(const struct model *m, uint64_t addr, unsigned order)
{
	int rc = model_locate(m, addr, order);
	if (rc != BUDDY_OK)
		return rc;
	int64_t i = zone_idx(m->z, addr / FS);
	if (!m->used[i])
		return BUDDY_EDOUBLE; /* a free head or inside a free block */
	if (m->head[i] < 0)
		return BUDDY_ETAIL;
	return m->head[i] == (int)order ? BUDDY_OK : BUDDY_EORDER;
}

static unsigned floor_log2(uint64_t n)
{
	unsigned k = 0;
	while ((n >> k) > 1)
		k++;
	return k;
}

static int model_free_run_rule(const struct model *m, uint64_t addr, uint64_t n)
{
	if (n == 0 || n > frames_of(MAXO))
		return BUDDY_EINVAL;
	if (zone_region(m->z, addr / FS) < 0)
		return BUDDY_ERANGE;
	if (addr % FS != 0 || (addr / FS) % frames_of(floor_log2(n)) != 0)
		return BUDDY_EALIGN;
	for (uint64_t pfn = addr / FS; n != 0;) {
		unsigned k = floor_log2(n);
		int rc = model_free_rule(m, pfn * FS, k);
		if (rc != BUDDY_OK)
			return rc;
		pfn += frames_of(k);
		n -= frames_of(k);
	}
	return BUDDY_OK;
}

static bool model_all_free(const struct model *m, uint64_t pfn, uint64_t n)
{
	for (uint64_t f = 0; f < n; f++)
		if (m->used[zone_idx(m->z, pfn + f)])
			return false;
	return true;
}

/* Some aligned free range of 2^order frames in one region ends <= limit. */
static bool model_fits(const struct model *m, unsigned order, uint64_t limit)
{
	for (unsigned r = 0; r < m->z->nrg; r++) {
		uint64_t b = m->z->rg[r].base / FS;
		uint64_t e = b + m->z->rg[r].size / FS, sz = frames_of(order);
		for (uint64_t p = (b + sz - 1) & ~(sz - 1); p + sz <= e;
		     p += sz)
			if ((p + sz) * FS <= limit && model_all_free(m, p, sz))
				return true;
	}
	return false;
}

/* Mark (or clear) the pieces of n frames at pfn, as alloc_run lays them. */
static void model_mark(struct model *m, uint64_t pfn, uint64_t n, bool use)
{
	while (n != 0) {
		unsigned k = floor_log2(n);
		m->head[zone_idx(m->z, pfn)] = use ? (int8_t)k : -1;
		for (uint64_t f = 0; f < frames_of(k); f++)
			m->used[zone_idx(m->z, pfn + f)] = use;
		pfn += frames_of(k);
		n -= frames_of(k);
	}
}

/* An allocation the implementation made: it must have been free. */
static void model_took(struct model *m, uint64_t addr, uint64_t n, bool run)
{
	uint64_t pfn = addr / FS;
	unsigned k = 0;
	while (frames_of(k) < n)
		k++;
	CHECK_EQ(addr % FS, 0);
	CHECK_EQ(pfn % frames_of(k), 0);
	int r = zone_region(m->z, pfn);
	CHECK_FATAL(r >= 0 && zone_region(m->z, pfn + n - 1) == r);
	CHECK_FATAL(model_all_free(m, pfn, n));
	model_mark(m, pfn, n, true);
	m->nfree -= n;
	m->held[m->nheld++] = (struct held){ pfn, n, run };
	m->allocs++;
}

static void model_result(struct model *m, int rc)
{
	if (rc == BUDDY_ENOMEM || rc == BUDDY_EBUSY)
		m->failed++;
	else if (rc != BUDDY_OK)
		m->rejected++;
}

static unsigned rand_order(void)
{
	unsigned k = 0;
	while (k < 12 && rnd(3) == 0)
		k++;
	return rnd(500) == 0 ? MAXO + 1 + (unsigned)rnd(3) : k;
}

static void op_alloc(struct model *m)
{
	unsigned k = rand_order();
	bool below = rnd(4) == 0;
	uint64_t limit = below ? rnd(6200) * FS : UINT64_MAX, addr = 0;
	int rc = buddy_locked_alloc_below(m->z->l, k, limit, &addr);
	if (k > MAXO)
		CHECK_EQ(rc, BUDDY_EINVAL);
	else if (rc == BUDDY_OK)
		CHECK((addr / FS + frames_of(k)) * FS <= limit);
	else if (rc == BUDDY_ENOMEM)
		CHECK(!model_fits(m, k, limit));
	else
		CHECK_EQ(rc, BUDDY_OK);
	if (rc == BUDDY_OK && k <= MAXO)
		model_took(m, addr, frames_of(k), false);
	model_result(m, rc);
}

static void op_alloc_run(struct model *m)
{
	uint64_t n = 1 + rnd(70), addr = 0;
	if (rnd(300) == 0)
		n = rnd(2) ? 0 : frames_of(MAXO) + 1;
	int rc = buddy_locked_alloc_run(m->z->l, n, &addr);
	if (n == 0 || n > frames_of(MAXO)) {
		CHECK_EQ(rc, BUDDY_EINVAL);
	} else if (rc == BUDDY_ENOMEM) {
		unsigned k = 0;
		while (frames_of(k) < n)
			k++;
		CHECK(!model_fits(m, k, UINT64_MAX));
	} else {
		CHECK_EQ(rc, BUDDY_OK);
	}
	if (rc == BUDDY_OK)
		model_took(m, addr, n, true);
	model_result(m, rc);
}

/* A random address: mostly frames of the zone, some holes and junk. */
static uint64_t rand_addr(const struct model *m)
{
	uint64_t r = rnd(10);
	if (r < 5 || m->nheld == 0)
		return zone_pfn(m->z, rnd(m->z->frames)) * FS;
	if (r < 8) {
		const struct held *h = &m->held[rnd(m->nheld)];
		return (h->pfn + rnd(h->n)) * FS;
	}
	if (r < 9)
		return rnd(6200) * FS;
	return rnd(6200 * FS);
}

static void op_alloc_at(struct model *m)
{
	uint64_t addr = rand_addr(m);
	unsigned k = rand_order() % 6;
	if (rnd(200) == 0)
		k = MAXO + 1;
	if (rnd(3) == 0)
		addr &= ~(frames_of(k) * FS - 1);
	int want = model_locate(m, addr, k);
	if (want == BUDDY_OK)
		want = model_all_free(m, addr / FS, frames_of(k)) ? BUDDY_OK
								  : BUDDY_EBUSY;
	int rc = buddy_locked_alloc_at(m->z->l, addr, k);
	CHECK_EQ(rc, want);
	if (rc == BUDDY_OK && want == BUDDY_OK)
		model_took(m, addr, frames_of(k), false);
	model_result(m, rc);
}

static void op_free_held(struct model *m)
{
	size_t i = (size_t)rnd(m->nheld);
	struct held h = m->held[i];
	int rc =
		h.run ? buddy_locked_free_run(m->z->l, h.pfn * FS, h.n)
		      : buddy_locked_free(m->z->l, h.pfn * FS, floor_log2(h.n));
	CHECK_EQ(rc, BUDDY_OK);
	if (rc != BUDDY_OK)
		return;
	model_mark(m, h.pfn, h.n, false);
	m->nfree += h.n;
	m->held[i] = m->held[--m->nheld];
	m->frees++;
}

/* A free or free_run the model says is wrong (a right one is skipped). */
static void op_free_bad(struct model *m)
{
	uint64_t addr = rand_addr(m);
	if (rnd(2)) {
		unsigned k = rand_order() % 5;
		if (rnd(100) == 0)
			k = MAXO + 1;
		int want = model_free_rule(m, addr, k);
		if (want == BUDDY_OK)
			return;
		CHECK_EQ(buddy_locked_free(m->z->l, addr, k), want);
	} else {
		uint64_t n = rnd(80);
		if (rnd(100) == 0)
			n = frames_of(MAXO) + 1;
		int want = model_free_run_rule(m, addr, n);
		if (want == BUDDY_OK)
			return;
		CHECK_EQ(buddy_locked_free_run(m->z->l, addr, n), want);
	}
	m->rejected++;
}

/* The frames agree with the model block by block; the counters too. */
static void model_compare(struct model *m, const uint16_t *s)
{
	const struct zone *z = m->z;
	for (uint64_t i = 0; i < z->frames;) {
		unsigned kind = s[i] >> 8, order = s[i] & 0xff;
		CHECK_FATAL(kind == BUDDY_FRAME_FREE ||
			    kind == BUDDY_FRAME_ALLOC);
		bool alloc = kind == BUDDY_FRAME_ALLOC;
		CHECK_EQ(m->head[i], alloc ? (int)order : -1);
		for (uint64_t f = 0; f < frames_of(order); f++)
			CHECK_EQ(m->used[i + f], alloc);
		i += frames_of(order);
	}
	struct buddy_stats st = zone_stats(z);
	CHECK_EQ(st.allocs, m->allocs);
	CHECK_EQ(st.frees, m->frees);
	CHECK_EQ(st.failed, m->failed);
	CHECK_EQ(st.rejected, m->rejected);
	zone_ok(z);
}

/* A model of z as it is now: every frame free, the counters as z's. */
static void model_new(struct model *m, const struct zone *z)
{
	struct buddy_stats st = zone_stats(z);
	*m = (struct model){ .z = z, .nfree = z->frames };
	m->used = calloc(z->frames, sizeof(*m->used));
	m->head = malloc(z->frames);
	m->held = calloc(z->frames, sizeof(*m->held));
	CHECK_FATAL(m->used && m->head && m->held);
	memset(m->head, -1, z->frames);
	m->allocs = st.allocs;
	m->frees = st.frees;
	m->failed = st.failed;
	m->rejected = st.rejected;
}

static void model_delete(struct model *m)
{
	free(m->used);
	free(m->head);
	free(m->held);
}

/* One random operation; frees as likely as frames are used: half full. */
static void model_op(struct model *m)
{
	/*
	 * An operation picked by weight, as every model test's step does; the
	 * weights are this test's.
	 */
	uint64_t used = m->z->frames - m->nfree;
	uint64_t r = rnd(100);
	if (m->nheld > 0 && rnd(m->z->frames) < used && r < 90)
		op_free_held(m);
	else if (r < 40)
		op_alloc(m);
	else if (r < 60)
		op_alloc_run(m);
	else if (r < 80)
		op_alloc_at(m);
	else
		op_free_bad(m);
}

static void test_random(struct zone *z, uint64_t ops)
{
	struct buddy_stats st0 = zone_stats(z);
	struct model m;
	model_new(&m, z);
	uint16_t *s = snap_new(z);
	unsigned long failures = atomic_load(&check_failures);
	for (uint64_t i = 0; i < ops; i++) {
		model_op(&m);
		CHECK_EQ(zone_stats(z).free_frames, m.nfree);
		if (i % 1000 == 999) {
			snap_take(z, s);
			model_compare(&m, s);
		}
		if (atomic_load(&check_failures) != failures) {
			fprintf(stderr, "random: stopped at op %" PRIu64 "\n",
				i);
			break;
		}
	}
	printf("random: %" PRIu64 " allocs, %" PRIu64 " frees, %" PRIu64
	       " failed, %" PRIu64 " rejected\n",
	       m.allocs - st0.allocs, m.frees - st0.frees,
	       m.failed - st0.failed, m.rejected - st0.rejected);
	while (m.nheld > 0)
		op_free_held(&m);
	snap_take(z, s);
	model_compare(&m, s);
	zone_is_initial(z);
	free(s);
	model_delete(&m);
}

/* A few threads on one zone; each frame handed out is claimed by CAS. */
#define THREADS 4
#define THREAD_OPS 20000
#define THREAD_HELD 24

static struct zone *mt_zone;
static _Atomic unsigned *mt_owner;

static void mt_claim(uint64_t pfn, uint64_t n, unsigned me, bool take)
{
	for (uint64_t f = 0; f < n; f++) {
		int64_t idx = zone_idx(mt_zone, pfn + f);
		unsigned want = take ? 0 : me, to = take ? me : 0;
		CHECK(idx >= 0 && atomic_compare_exchange_strong(&mt_owner[idx],
								 &want, to));
	}
}

/* Give h back: unclaim its frames first, then free it. */
static void mt_free(struct held h, unsigned me)
{
	mt_claim(h.pfn, h.n, me, false);
	int rc = h.run ? buddy_locked_free_run(mt_zone->l, h.pfn * FS, h.n)
		       : buddy_locked_free(mt_zone->l, h.pfn * FS,
					   floor_log2(h.n));
	CHECK_EQ(rc, BUDDY_OK);
}

/* A block (or a run, if run) from r; claim its frames. False on ENOMEM. */
static bool mt_alloc(uint64_t r, unsigned me, bool run, struct held *h)
{
	uint64_t n = run ? 1 + r % 9 : frames_of((unsigned)(r % 5)), addr;
	int rc = run ? buddy_locked_alloc_run(mt_zone->l, n, &addr)
		     : buddy_locked_alloc(mt_zone->l, floor_log2(n), &addr);
	if (rc != BUDDY_OK) {
		CHECK_EQ(rc, BUDDY_ENOMEM);
		return false;
	}
	mt_claim(addr / FS, n, me, true);
	*h = (struct held){ addr / FS, n, run };
	return true;
}

static void *mt_thread(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg + 1;
	struct held held[THREAD_HELD];
	unsigned nheld = 0;
	uint64_t seed = me * 0x9e3779b97f4a7c15ull;
	for (unsigned i = 0; i < THREAD_OPS; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t r = seed >> 33;
		if (nheld == THREAD_HELD || (nheld > 0 && r % 2 == 0)) {
			unsigned j = (unsigned)(r / 2 % nheld);
			mt_free(held[j], me);
			held[j] = held[--nheld];
		} else if (mt_alloc(r / 4, me, r % 4 == 1, &held[nheld])) {
			nheld++;
		}
	}
	while (nheld > 0)
		mt_free(held[--nheld], me);
	return NULL;
}

static void test_threads(struct zone *z)
{
	mt_zone = z;
	mt_owner = calloc(z->frames, sizeof(*mt_owner));
	CHECK_FATAL(mt_owner != NULL);
	struct buddy_stats st = zone_stats(z);
	pthread_t t[THREADS];
	for (uintptr_t i = 0; i < THREADS; i++)
		CHECK_FATAL(pthread_create(&t[i], NULL, mt_thread, (void *)i) ==
			    0);
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	struct buddy_stats st2 = zone_stats(z);
	CHECK_EQ(st2.allocs - st.allocs, st2.frees - st.frees);
	CHECK_EQ(st2.rejected, st.rejected);
	zone_is_initial(z);
	free(mt_owner);
}

int main(int argc, char **argv)
{
	uint64_t ops = 200000;
	if (argc > 1)
		rng_state = strtoull(argv[1], NULL, 0);
	if (argc > 2)
		ops = strtoull(argv[2], NULL, 0);
	printf("test_buddy_locked: seed %#" PRIx64 ", %" PRIu64 " ops\n",
	       rng_state, ops);
	test_meta();
	test_max_regions();
	struct zone z;
	zone_new(&z, main_regions, MAIN_NREGIONS);
	CHECK_FATAL(z.frames == MAIN_FRAMES);
	test_init(&z);
	test_every_order(&z);
	test_exhaustion(&z);
	test_alloc_below(&z);
	test_alloc_at(&z);
	test_alloc_at_whole(&z);
	test_runs(&z);
	test_free_run_errors(&z);
	test_free_errors(&z);
	test_check_detects(&z);
	test_random(&z, ops);
	test_threads(&z);
	zone_delete(&z);
	test_max_order();
	return check_exit("test_buddy_locked");
}
