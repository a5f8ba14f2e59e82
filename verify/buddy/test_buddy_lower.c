/*
 * test_buddy_lower.c: the lower level of the buddy's version 3 above the
 * unit words (buddy/buddy_lower.h): reservations, partial stacks, listing,
 * stealing, units back to the source. The source is a stand-in for the
 * core: a flag per unit, taken by CAS, one at a time or a line of
 * BL_LINE at once.
 *
 *   test_buddy_lower          on one thread, two contexts: every frame of
 *                             the zone allocated once (orders 0-4 mixed),
 *                             ENOMEM only when none is free, every bad
 *                             free refused with every word unchanged,
 *                             invariants B1, B3, B4 after every phase;
 *                             everything freed, released and reclaimed:
 *                             every unit back at the source. Then two
 *                             contexts' reservations: lines of their own.
 *                             Then a listed unit whose class grew serves
 *                             a larger order before a fresh unit.
 *   test_buddy_lower stress T N
 *                             T threads, N operations each, on 16 units:
 *                             random orders, frees of blocks other
 *                             threads allocated (a shared mailbox), an
 *                             owner stamp per frame taken by CAS (a frame
 *                             handed out twice fails at once); at the end
 *                             B1-B4, every unit back at the source, and
 *                             allocations = frees.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "buddy_lower.h"
#include "check.h"

#define MAXU 64
#define MAXC 8

static lf_atomic_u64 word[MAXU];
static lf_atomic_u32 plink[MAXU];
static lf_atomic_u16 pstk[MAXU];
static lf_atomic_u32 avail[MAXU]; /* the source: 1 while it holds u */
static struct bl_ctx ctx[MAXC];
static struct bl_zone z;
static uint32_t nunits;

static uint32_t src_take(void *arg)
{
	(void)arg;
	for (uint32_t u = 0; u < nunits; u++) {
		uint32_t one = 1;
		/* Acq_rel: a claim of the unit (pairs with src_give). */
		if (lf_load_u32(&avail[u], LF_RELAXED) == 1 &&
		    lf_cas_u32(&avail[u], &one, 0, LF_ACQ_REL))
			return u;
	}
	return BL_NONE;
}

static void src_give(void *arg, uint32_t u)
{
	(void)arg;
	/* Relaxed load: the word is ours to check; release: to src_take. */
	CHECK(lf_load_u64(&word[u], LF_RELAXED) == BU_CORE);
	CHECK(lf_load_u32(&avail[u], LF_RELAXED) == 0);
	lf_store_u32(&avail[u], 1, LF_RELEASE);
}

/* BL_LINE units aligned to BL_LINE, all at the source: taken at once. */
static uint32_t src_take_line(void *arg)
{
	(void)arg;
	for (uint32_t l = 0; l + BL_LINE <= nunits; l += BL_LINE) {
		uint32_t i;
		for (i = 0; i < BL_LINE; i++) {
			uint32_t one = 1;
			/* Acq_rel: as src_take(). */
			if (!lf_cas_u32(&avail[l + i], &one, 0, LF_ACQ_REL))
				break;
		}
		if (i == BL_LINE)
			return l;
		while (i-- > 0) /* give back what we took of this line */
			/* Release: as src_give(). */
			lf_store_u32(&avail[l + i], 1, LF_RELEASE);
	}
	return BL_NONE;
}

static bool src_has(void *arg)
{
	(void)arg;
	for (uint32_t u = 0; u < nunits; u++)
		/* Acquire: pairs with src_give's release. */
		if (lf_load_u32(&avail[u], LF_ACQUIRE) == 1)
			return true;
	return false;
}

static void setup(uint32_t n, uint32_t nctx)
{
	nunits = n;
	for (uint32_t u = 0; u < n; u++)
		lf_init_u32(&avail[u], 1);
	bl_zone_init(&z, word, plink, pstk, n,
		     (struct bl_source){ .take = src_take,
					 .give = src_give,
					 .has = src_has,
					 .take_line = src_take_line },
		     ctx, nctx);
}

static void check_zone(const char *when)
{
	uint32_t u;
	int b = bl_zone_check(&z, &u);
	if (b != 0)
		fprintf(stderr, "B%d broken at unit %u %s\n", b, u, when);
	CHECK_EQ(b, 0);
}

static unsigned at_source(void)
{
	unsigned n = 0;
	for (uint32_t u = 0; u < nunits; u++)
		n += lf_load_u32(&avail[u], LF_RELAXED);
	return n;
}

static void finish(uint32_t nctx)
{
	for (uint32_t i = 0; i < nctx; i++)
		bl_release(&ctx[i]);
	check_zone("after the releases");
	CHECK_EQ(at_source(), nunits);
	uint64_t a = 0, f = 0, lfree = 0;
	for (uint32_t i = 0; i < nctx; i++) {
		a += lf_load_u64(&ctx[i].ctr[BL_ALLOCS], LF_RELAXED);
		f += lf_load_u64(&ctx[i].ctr[BL_FREES], LF_RELAXED);
		lfree += lf_load_u64(&ctx[i].ctr[BL_LFREE], LF_RELAXED);
	}
	CHECK_EQ(a, f);
	CHECK_EQ(lfree, 0);
}

/* ---- one thread ---- */

static uint32_t held_f[MAXU * BU_FRAMES];
static uint8_t held_k[MAXU * BU_FRAMES];
static uint8_t owner[MAXU * BU_FRAMES];

static void snapshot(uint64_t *s)
{
	for (uint32_t u = 0; u < nunits; u++)
		s[u] = lf_load_u64(&word[u], LF_RELAXED);
}

static void test_one_thread(void)
{
	setup(8, 2);
	uint32_t n = 0, frames = 0, total = 8 * BU_FRAMES;
	memset(owner, 0, sizeof(owner));
	/* Orders 2, 0, 1, 0, 4, ... from alternate contexts, until full. */
	for (unsigned step = 0;; step++) {
		unsigned k = (step * 7 + step / 3) % 5;
		uint32_t f;
		int rc = bl_alloc(&ctx[step % 2], k, &f);
		if (rc == BUDDY_ENOMEM) {
			if (k == 0)
				break;
			continue;
		}
		CHECK_EQ(rc, BUDDY_OK);
		CHECK_EQ(f % (1u << k), 0);
		for (uint32_t x = f; x < f + (1u << k); x++) {
			CHECK(x < total && owner[x] == 0);
			owner[x] = 1;
		}
		held_f[n] = f;
		held_k[n++] = (uint8_t)k;
		frames += 1u << k;
	}
	CHECK_EQ(frames, total); /* order 0 fails only when nothing is free */
	CHECK_EQ(at_source(), 0);
	check_zone("full");
	/* Bad frees: each refused, every word unchanged. */
	uint64_t before[MAXU], after[MAXU];
	snapshot(before);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t f = held_f[i];
		unsigned k = held_k[i];
		if (k > 0) {
			CHECK_EQ(bl_free(&ctx[0], f, k - 1), BUDDY_EORDER);
			CHECK_EQ(bl_free(&ctx[1], f + 1, 0), BUDDY_ETAIL);
		}
		if (k < BU_MAX_ORDER && f % (2u << k) == 0 &&
		    owner[f + (1u << k)] != 0)
			CHECK_EQ(bl_free(&ctx[0], f, k + 1), BUDDY_EORDER);
	}
	CHECK_EQ(bl_free(&ctx[0], total, 0), BUDDY_ERANGE);
	CHECK_EQ(bl_free(&ctx[0], 1, 1), BUDDY_EALIGN);
	CHECK_EQ(bl_free(&ctx[0], 0, 5), BUDDY_EINVAL);
	snapshot(after);
	CHECK(memcmp(before, after, sizeof(uint64_t) * nunits) == 0);
	/* Free every other block, then double-free them. */
	for (uint32_t i = 0; i < n; i += 2)
		CHECK_EQ(bl_free(&ctx[i % 2], held_f[i], held_k[i]), BUDDY_OK);
	check_zone("half freed");
	snapshot(before);
	for (uint32_t i = 0; i < n; i += 2)
		CHECK_EQ(bl_free(&ctx[1], held_f[i], held_k[i]), BUDDY_EDOUBLE);
	snapshot(after);
	CHECK(memcmp(before, after, sizeof(uint64_t) * nunits) == 0);
	/* Reallocate the holes (listed units, stolen frames), free all. */
	uint32_t f, holes = 0, hole_frames = 0;
	for (uint32_t i = 0; i < n; i += 2)
		hole_frames += 1u << held_k[i];
	static uint32_t got[MAXU * BU_FRAMES];
	while (holes < hole_frames && bl_alloc(&ctx[0], 0, &f) == BUDDY_OK)
		got[holes++] = f;
	CHECK_EQ(holes, hole_frames); /* every hole found again */
	CHECK_EQ(bl_alloc(&ctx[1], 0, &f), BUDDY_ENOMEM);
	for (uint32_t i = 0; i < holes; i++)
		CHECK_EQ(bl_free(&ctx[1], got[i], 0), BUDDY_OK);
	for (uint32_t i = 1; i < n; i += 2)
		CHECK_EQ(bl_free(&ctx[0], held_f[i], held_k[i]), BUDDY_OK);
	check_zone("all freed");
	CHECK(bl_reclaim_all(&ctx[1]) <= 2);
	check_zone("reclaimed");
	finish(2);
}

/*
 * Two contexts' first reservations are lines of their own (their words on
 * different cache lines); a context whose line cannot serve an order
 * moves to another unit of it before it lets the line go.
 */
static void test_lines(void)
{
	setup(16, 2);
	uint32_t f0, f1, f;
	CHECK_EQ(bl_alloc(&ctx[0], 0, &f0), BUDDY_OK);
	CHECK_EQ(bl_alloc(&ctx[1], 0, &f1), BUDDY_OK);
	uint32_t l0 = lf_load_u32(&ctx[0].line, LF_RELAXED);
	uint32_t l1 = lf_load_u32(&ctx[1].line, LF_RELAXED);
	CHECK(l0 != BL_NONE && l1 != BL_NONE && l0 != l1);
	CHECK_EQ(l0 % BL_LINE, 0);
	CHECK(f0 / BU_FRAMES - l0 < BL_LINE && f1 / BU_FRAMES - l1 < BL_LINE);
	CHECK((uintptr_t)&word[l0] / 64 != (uintptr_t)&word[l1] / 64);
	/* Fill ctx 0's first unit with order-4 blocks: the next goes on. */
	uint32_t held[4], n = 0;
	while (n < 4 && bl_alloc(&ctx[0], 4, &f) == BUDDY_OK)
		held[n++] = f;
	CHECK_EQ(n, 4);
	CHECK(f / BU_FRAMES - l0 < BL_LINE && f / BU_FRAMES != l0);
	CHECK_EQ(lf_load_u32(&ctx[0].line, LF_RELAXED), l0);
	check_zone("lines");
	for (uint32_t i = 0; i < n; i++)
		CHECK_EQ(bl_free(&ctx[1], held[i], 4), BUDDY_OK);
	CHECK_EQ(bl_free(&ctx[0], f0, 0), BUDDY_OK);
	CHECK_EQ(bl_free(&ctx[0], f1, 0), BUDDY_OK);
	finish(2);
}

/*
 * A unit listed at a class that grew since (a free does not list a
 * listed unit again) serves a larger order before a fresh unit is taken
 * from the source: the first pass of bl_alloc() sweeps the classes below
 * k (without it small blocks spread over ever more units:
 * bench/README.md, bench_frag_v3).
 */
static void test_grown_class(void)
{
	setup(16, 2);
	uint32_t f;
	for (unsigned i = 0; i < BU_FRAMES; i++) {
		CHECK_EQ(bl_alloc(&ctx[0], 0, &f), BUDDY_OK);
		CHECK_EQ(f, i); /* unit 0 of the line 0-7, in order */
	}
	bl_release(&ctx[0]); /* unit 0 full: kept; units 1-7 back */
	CHECK_EQ(at_source(), nunits - 1);
	/* Frame 0 lists unit 0 at class 0; frames 1-3 make it class 2. */
	for (uint32_t i = 0; i < 4; i++)
		CHECK_EQ(bl_free(&ctx[0], i, 0), BUDDY_OK);
	/* Relaxed: one thread. */
	CHECK_EQ(lf_load_u16(&pstk[0], LF_RELAXED), 1);
	CHECK_EQ(bl_alloc(&ctx[1], 2, &f), BUDDY_OK);
	CHECK_EQ(f, 0); /* the grown unit, not a fresh line */
	CHECK_EQ(at_source(), nunits - 1);
	CHECK_EQ(lf_load_u64(&ctx[1].ctr[BL_TAKEN], LF_RELAXED), 0);
	check_zone("grown class");
	CHECK_EQ(bl_free(&ctx[1], 0, 2), BUDDY_OK);
	for (uint32_t i = 4; i < BU_FRAMES; i++)
		CHECK_EQ(bl_free(&ctx[0], i, 0), BUDDY_OK);
	finish(2);
}

/* ---- threads ---- */

#define MAILBOX 64
static lf_atomic_u64 mailbox[MAILBOX]; /* frame << 8 | order | 1 << 7 */
static lf_atomic_u32 stamp[MAXU * BU_FRAMES];
static uint32_t ops_per_thread;
static lf_atomic_u64 done_ops;

static uint64_t rnd(uint64_t *s)
{
	uint64_t v = (*s += 0x9e3779b97f4a7c15ull);
	v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ull;
	v = (v ^ (v >> 27)) * 0x94d049bb133111ebull;
	return v ^ (v >> 31);
}

static void stamp_take(uint32_t f, unsigned k, uint32_t me)
{
	for (uint32_t x = f; x < f + (1u << k); x++) {
		uint32_t zero = 0;
		/* Relaxed: the stamp only detects a second owner. */
		CHECK_FATAL(lf_cas_u32(&stamp[x], &zero, me, LF_RELAXED));
	}
}

static void stamp_drop(uint32_t f, unsigned k)
{
	for (uint32_t x = f; x < f + (1u << k); x++)
		lf_store_u32(&stamp[x], 0, LF_RELAXED);
}

static void release_block(struct bl_ctx *c, uint64_t m)
{
	uint32_t f = (uint32_t)(m >> 8);
	unsigned k = m & 7;
	stamp_drop(f, k);
	CHECK_EQ(bl_free(c, f, k), BUDDY_OK);
}

static void *worker(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	struct bl_ctx *c = &ctx[id];
	uint64_t s = 1000 + id, held[16];
	unsigned nh = 0;
	for (uint32_t n = 0; n < ops_per_thread; n++) {
		uint64_t r = rnd(&s);
		if (nh < 16 && (r & 3) != 0) {
			unsigned k = (unsigned)(r >> 8) % 5;
			k = k > 2 && (r & 0x400) ? 0 : k;
			uint32_t f;
			int rc = bl_alloc(c, k, &f);
			if (rc == BUDDY_OK) {
				stamp_take(f, k, id + 1);
				held[nh++] = (uint64_t)f << 8 | 1u << 7 | k;
			} else {
				CHECK_EQ(rc, BUDDY_ENOMEM);
			}
		} else if (nh > 0) {
			unsigned i = (unsigned)(r >> 16) % nh;
			uint64_t m = held[i];
			held[i] = held[--nh];
			/* Swap through the mailbox: free another's block. */
			/* Acq_rel: hands the block (and its stamp) over. */
			m = lf_xchg_u64(&mailbox[(r >> 24) % MAILBOX], m,
					LF_ACQ_REL);
			if (m != 0)
				release_block(c, m);
		}
		if ((r & 0xff) == 0)
			bl_release(c);
	}
	while (nh > 0)
		release_block(c, held[--nh]);
	lf_fetch_add_u64(&done_ops, ops_per_thread, LF_RELAXED);
	return NULL;
}

static void test_stress(unsigned nthreads, uint32_t ops)
{
	CHECK_FATAL(nthreads <= MAXC);
	setup(16, nthreads);
	ops_per_thread = ops;
	for (unsigned i = 0; i < MAILBOX; i++)
		lf_init_u64(&mailbox[i], 0);
	lf_init_u64(&done_ops, 0);
	pthread_t t[MAXC];
	for (unsigned i = 0; i < nthreads; i++)
		CHECK_FATAL(pthread_create(&t[i], NULL, worker,
					   (void *)(uintptr_t)i) == 0);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	for (unsigned i = 0; i < MAILBOX; i++) {
		uint64_t m = lf_load_u64(&mailbox[i], LF_RELAXED);
		if (m != 0)
			release_block(&ctx[0], m);
	}
	CHECK(lf_load_u64(&done_ops, LF_RELAXED) == (uint64_t)nthreads * ops);
	CHECK(ops > 0);
	check_zone("after the threads");
	finish(nthreads);
	uint64_t stolen = 0, listed = 0;
	for (unsigned i = 0; i < nthreads; i++) {
		stolen += lf_load_u64(&ctx[i].ctr[BL_STOLEN], LF_RELAXED);
		listed += lf_load_u64(&ctx[i].ctr[BL_LISTED], LF_RELAXED);
	}
	printf("stress: %u threads x %u ops, %llu listed, %llu stolen\n",
	       nthreads, ops, (unsigned long long)listed,
	       (unsigned long long)stolen);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "stress") == 0) {
		unsigned nt = argc > 2 ? (unsigned)atoi(argv[2]) : 4;
		uint32_t ops = argc > 3 ? (uint32_t)atoi(argv[3]) : 100000;
		test_stress(nt, ops);
		return check_exit("stress_buddy_lower");
	}
	test_one_thread();
	test_lines();
	test_grown_class();
	return check_exit("test_buddy_lower");
}
