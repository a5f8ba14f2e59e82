/*
 * test_buddy_unit.c: the lower level of the buddy's version 3
 * (buddy/buddy_unit.h, docs/design.md 2.7) against a reference model of one
 * unit that keeps, per frame, free / allocated head / tail and each head's
 * order, and allocates like a naive buddy (smallest maximal free block,
 * lowest first, low part kept).
 *
 *  1. Every state of an aligned window of 8 frames (677 of them), at each of
 *     the four windows, with the rest of the unit in three backgrounds, R
 *     clear and set: the word encodes the state (bu_valid, the codes, the
 *     orders, the free frames, the largest free order), and every
 *     transition with every argument (alloc of every order and 11 limits,
 *     alloc_at and free at every frame and order, runs, frees of runs,
 *     reserve, release, reclaim) gives the reference's result code and word;
 *     a refusal leaves the word unchanged.
 *  2. Reachability: from a unit whose upper half is one allocated order-4
 *     block, allocations of every order and frees of every allocated block
 *     reach exactly every state of the lower half (458,330, the number of
 *     states of an order-4 buddy block: T(0) = 2, T(j) = 1 + T(j-1)^2):
 *     implicit coalescing gives one word per state, and every state is
 *     reachable by the API.
 *  3. Random sequences through the CAS loops (bu_cas_alloc, bu_cas) on one
 *     thread from edge units with holes, with valid, double, wrong-order and
 *     tail frees, against the reference; the word valid after every step.
 *
 * Usage: test_buddy_unit [--seeds N] [--ops N]
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buddy_unit.h"
#include "buddy_unit_ref.h"
#include "check.h"

/* The encoding: valid, every code, every head's order, the counts. */
static void check_encoding(const struct ref *r, uint64_t w)
{
	CHECK_EQ(w, ref_encode(r));
	CHECK(bu_valid(w));
	CHECK_EQ(bu_reserved(w), r->res);
	CHECK_EQ(bu_free_frames(w), ref_free_count(r));
	CHECK_EQ(bu_max_free_order(w), ref_max_free_order(r));
	for (unsigned i = 0; i < BU_FRAMES; i++) {
		unsigned c = bu_code(w, i), k = 99;
		CHECK_EQ(c, r->st[i] == RF   ? BU_CODE_F
			    : r->st[i] == RA ? BU_CODE_H
					     : BU_CODE_T);
		if (r->st[i] == RA) {
			CHECK_EQ(bu_block_order(w, i, &k), BUDDY_OK);
			CHECK_EQ(k, r->ord[i]);
		}
	}
}

/* One transition on w and on a copy of r: equal codes and words. */
static unsigned long n_transitions;
static void compare(int rc, uint64_t w, uint64_t nw, int rrc,
		    const struct ref *after)
{
	n_transitions++;
	CHECK_EQ(rc, rrc);
	if (rc == BUDDY_OK)
		CHECK_EQ(nw, ref_encode(after));
	(void)w;
}

static const unsigned ends[] = { 32, 31, 24, 17, 16, 9, 8, 4, 2, 1, 0 };
static const unsigned run_ns[] = { 1, 2, 3, 5, 7, 8, 12, 13, 16, 24, 31 };

static void check_transitions(const struct ref *r0, uint64_t w)
{
	struct ref r;
	uint64_t nw;
	unsigned off, roff;
	for (unsigned k = 0; k <= BU_ORDER; k++)
		for (unsigned e = 0; e < sizeof(ends) / sizeof(ends[0]); e++) {
			r = *r0;
			nw = w;
			int rc = bu_alloc(w, k, ends[e], &nw, &off);
			int rrc = ref_alloc(&r, k, ends[e], &roff);
			compare(rc, w, nw, rrc, &r);
			if (rc == BUDDY_OK && rrc == BUDDY_OK)
				CHECK_EQ(off, roff);
		}
	for (unsigned i = 0; i < BU_FRAMES; i++)
		for (unsigned k = 0; k <= BU_MAX_ORDER; k++) {
			r = *r0;
			int rc = bu_alloc_at(w, i, k, &nw);
			compare(rc, w, nw, ref_alloc_at(&r, i, k), &r);
			r = *r0;
			rc = bu_free(w, i, k, &nw);
			compare(rc, w, nw, ref_free(&r, i, k), &r);
		}
	for (unsigned n = 1; n < BU_FRAMES; n++) {
		r = *r0;
		int rc = bu_run(w, n, &nw, &off);
		int rrc = ref_run(&r, n, &roff);
		compare(rc, w, nw, rrc, &r);
		if (rc == BUDDY_OK && rrc == BUDDY_OK)
			CHECK_EQ(off, roff);
	}
	for (unsigned i = 0; i < BU_FRAMES; i += 4)
		for (unsigned j = 0; j < sizeof(run_ns) / sizeof(run_ns[0]);
		     j++) {
			r = *r0;
			int rc = bu_free_run(w, i, run_ns[j], &nw);
			compare(rc, w, nw, ref_free_run(&r, i, run_ns[j]), &r);
		}
	r = *r0;
	r.res = true;
	CHECK_EQ(bu_reserve(w, &nw), BUDDY_OK);
	CHECK_EQ(nw, ref_encode(&r));
	r = *r0;
	r.res = false;
	ref_settle(&r);
	CHECK_EQ(bu_release(w, &nw), BUDDY_OK);
	CHECK_EQ(nw, ref_encode(&r));
	r = *r0;
	int rc = bu_reclaim(w, &nw);
	compare(rc, w, nw, ref_reclaim(&r), &r);
}

/* Every state of a block of order 3 (8 frames) into st/ord at p. */
#define WIN 8
#define WIN_STATES 677
static struct ref win[WIN_STATES];
static unsigned nwin;

static unsigned gen(unsigned j, struct ref *out)
{
	if (j == 0) {
		memset(&out[0], 0, sizeof(out[0]));
		memset(&out[1], 0, sizeof(out[1]));
		out[1].st[0] = RA;
		return 2;
	}
	struct ref *sub = malloc(sizeof(*sub) * WIN_STATES);
	CHECK_FATAL(sub != NULL);
	unsigned ns = gen(j - 1, sub), n = 0, h = 1u << (j - 1);
	memset(&out[n], 0, sizeof(out[n]));
	ref_put(&out[n++], 0, j);
	for (unsigned a = 0; a < ns; a++)
		for (unsigned b = 0; b < ns; b++) {
			out[n] = sub[a];
			memcpy(&out[n].st[h], sub[b].st, h);
			memcpy(&out[n].ord[h], sub[b].ord, h);
			n++;
		}
	free(sub);
	return n;
}

/* The rest of the unit around the window. */
static void background(struct ref *r, unsigned bg)
{
	memset(r, 0, sizeof(*r));
	for (unsigned q = 0; q < BU_FRAMES; q += WIN) {
		if (bg == 1) {
			ref_put(r, q, 3);
		} else if (bg == 2) {
			ref_put(r, q, 2);
			ref_put(r, q + 6, 0); /* q + 4, q + 5, q + 7 free */
		}
	}
}

static void test_windows(void)
{
	nwin = gen(3, win);
	CHECK_EQ(nwin, WIN_STATES);
	unsigned long states = 0;
	for (unsigned bg = 0; bg < 3; bg++)
		for (unsigned p = 0; p < BU_FRAMES; p += WIN)
			for (unsigned s = 0; s < nwin; s++)
				for (unsigned res = 0; res < 2; res++) {
					struct ref r;
					background(&r, bg);
					memcpy(&r.st[p], win[s].st, WIN);
					memcpy(&r.ord[p], win[s].ord, WIN);
					r.res = res;
					if (!res &&
					    ref_all_free(&r, 0, BU_FRAMES))
						continue; /* that is word 0 */
					uint64_t w = ref_encode(&r);
					check_encoding(&r, w);
					check_transitions(&r, w);
					states++;
				}
	printf("windows: %lu states, %lu transitions compared\n", states,
	       n_transitions);
	CHECK(states > 10000);
}

/* Open-addressing set of words. */
#define SET_BITS 21
static uint64_t *set;
static bool set_add(uint64_t w)
{
	uint64_t h = (w * 0x9e3779b97f4a7c15ull) >> (64 - SET_BITS);
	for (;; h = (h + 1) & ((1u << SET_BITS) - 1)) {
		if (set[h] == w)
			return false;
		if (set[h] == 0) {
			set[h] = w;
			return true;
		}
	}
}

static void test_reach(void)
{
	set = calloc((size_t)1 << SET_BITS, sizeof(*set));
	uint64_t *queue = malloc(sizeof(*queue) << (SET_BITS - 1));
	CHECK_FATAL(set != NULL && queue != NULL);
	uint64_t w0 = bu_put_block(bu_make(0, BU_FRAMES, true), 16, 4);
	size_t head = 0, tail = 0;
	set_add(w0);
	queue[tail++] = w0;
	while (head < tail) {
		uint64_t w = queue[head++], nw = 0;
		unsigned off;
		CHECK(bu_valid(w));
		for (unsigned k = 0; k <= BU_MAX_ORDER; k++)
			if (bu_alloc(w, k, BU_FRAMES, &nw, &off) == BUDDY_OK &&
			    set_add(nw)) {
				CHECK_FATAL(tail < (size_t)1 << (SET_BITS - 1));
				queue[tail++] = nw;
			}
		for (unsigned i = 0; i < 16; i++) {
			unsigned k;
			if (bu_block_order(w, i, &k) != BUDDY_OK)
				continue;
			CHECK_EQ(bu_free(w, i, k, &nw), BUDDY_OK);
			if (set_add(nw)) {
				CHECK_FATAL(tail < (size_t)1 << (SET_BITS - 1));
				queue[tail++] = nw;
			}
		}
	}
	printf("reach: %zu words\n", tail);
	CHECK_EQ(tail, 458330);
	free(queue);
	free(set);
}

/* splitmix64 */
static uint64_t rng_s;
static uint64_t rng(void)
{
	uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Through the CAS loops on one thread, against the reference. */
static void run_random(uint64_t seed, uint64_t ops)
{
	rng_s = seed;
	lf_atomic_u64 a;
	struct ref r;
	unsigned lo = 0, hi = BU_FRAMES;
	if (seed % 3 == 1)
		lo = (unsigned)(rng() % 16);
	if (seed % 3 == 2)
		hi = 16 + (unsigned)(rng() % 17);
	memset(&r, 0, sizeof(r));
	for (unsigned i = 0; i < BU_FRAMES; i++)
		if (i < lo || i >= hi)
			ref_put(&r, i, 0);
	r.res = true;
	lf_init_u64(&a, bu_make(lo, hi, true));
	CHECK_EQ(lf_load_u64(&a, LF_RELAXED), ref_encode(&r));
	for (uint64_t n = 0; n < ops && !r.core; n++) {
		uint64_t old = lf_load_u64(&a, LF_RELAXED), ow, nw;
		unsigned x = (unsigned)rng(), i = (x >> 8) % BU_FRAMES;
		unsigned k = (x >> 16) % (BU_MAX_ORDER + 1), off = 0, roff = 0;
		int rc, rrc;
		switch (x % 8) {
		case 0:
		case 1:
		case 2: {
			unsigned end = 1 + (x >> 24) % BU_FRAMES;
			rc = bu_cas_alloc(&a, k, end, &off, NULL);
			rrc = ref_alloc(&r, k, end, &roff);
			if (rc == BUDDY_OK)
				CHECK_EQ(off, roff);
			break;
		}
		case 3:
		case 4: /* a frame that is a head, freed with its order or not
			 */
			for (unsigned t = 0; t < BU_FRAMES; t++)
				if (r.st[(i + t) % BU_FRAMES] == RA) {
					i = (i + t) % BU_FRAMES;
					break;
				}
			if (r.st[i] == RA && (x >> 28) % 4 != 0)
				k = r.ord[i];
			i &= ~((1u << k) - 1);
			rc = bu_cas(&a, BU_OP_FREE, i, k, &ow, &nw, NULL);
			rrc = ref_free(&r, i, k);
			break;
		case 5:
			rc = bu_cas(&a, BU_OP_ALLOC_AT, i & ~((1u << k) - 1), k,
				    &ow, &nw, NULL);
			rrc = ref_alloc_at(&r, i & ~((1u << k) - 1), k);
			break;
		case 6: {
			unsigned cnt = 1 + (x >> 24) % 12;
			if (x & 0x80) {
				rc = bu_cas(&a, BU_OP_RUN, 0, cnt, &ow, &nw,
					    &off);
				rrc = ref_run(&r, cnt, &roff);
				if (rc == BUDDY_OK)
					CHECK_EQ(off, roff);
			} else {
				rc = bu_cas(&a, BU_OP_FREE_RUN, i, cnt, &ow,
					    &nw, NULL);
				rrc = ref_free_run(&r, i, cnt);
			}
			break;
		}
		default:
			if (x & 0x100) {
				rc = bu_cas(&a, BU_OP_RECLAIM, 0, 0, &ow, &nw,
					    NULL);
				rrc = ref_reclaim(&r);
			} else {
				rc = bu_cas(&a, BU_OP_RELEASE, 0, 0, &ow, &nw,
					    NULL);
				r.res = false;
				ref_settle(&r);
				rrc = BUDDY_OK;
				if (rc == BUDDY_OK && !r.core) {
					CHECK_EQ(bu_cas(&a, BU_OP_RESERVE, 0, 0,
							&ow, &nw, NULL),
						 BUDDY_OK);
					r.res = true;
				}
			}
			break;
		}
		CHECK_EQ(rc, rrc);
		uint64_t now = lf_load_u64(&a, LF_RELAXED);
		if (rc != BUDDY_OK)
			CHECK_EQ(now, old); /* a refusal changes nothing */
		CHECK_EQ(now, ref_encode(&r));
		if (!r.core)
			CHECK(bu_valid(now));
	}
	/* Word 0: every loop reports the unit at the core. */
	lf_store_u64(&a, BU_CORE, LF_RELAXED);
	uint64_t ow, nw;
	unsigned off;
	CHECK_EQ(bu_cas_alloc(&a, 0, BU_FRAMES, &off, NULL), BU_NOT_LOWER);
	CHECK_EQ(bu_cas(&a, BU_OP_FREE, 0, 0, &ow, &nw, NULL), BU_NOT_LOWER);
}

/*
 * bu_alloc_run0() on w with max: 0 unless w's free frames (by their
 * codes) are exactly [a, 32), a non-empty top run, and max > 0; else
 * min(max, 32 - a) blocks at a, a + 1, ..., and the word that as many
 * bu_alloc() of order 0 in a row give, block by block.
 */
static unsigned long n_run0;
static void check_run0(uint64_t w, unsigned max)
{
	uint64_t nw = 0, v = w;
	unsigned first = 99, a = BU_FRAMES, nfree = 0, off = 0;
	unsigned n = bu_alloc_run0(w, max, &nw, &first);
	for (unsigned i = 0; i < BU_FRAMES; i++)
		if (w != BU_CORE && bu_code(w, i) == BU_CODE_F) {
			nfree++;
			if (a == BU_FRAMES)
				a = i;
		}
	if (nfree == 0 || nfree != BU_FRAMES - a || max == 0) {
		CHECK_EQ(n, 0);
		CHECK_EQ(first, 99); /* nothing written */
		return;
	}
	CHECK_EQ(n, BU_FRAMES - a < max ? BU_FRAMES - a : max);
	CHECK_EQ(first, a);
	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(bu_alloc(v, 0, BU_FRAMES, &v, &off), BUDDY_OK);
		CHECK_EQ(off, a + i);
	}
	CHECK_EQ(nw, v);
	CHECK(bu_valid(nw));
	n_run0++;
}

/*
 * bu_alloc_run0() against the picks: every top run [a, 32) with the
 * frames below as order-0 heads, R set and clear; then words of every
 * shape from random allocations and frees of every order, edge units
 * included (most are not top runs: 0 taken); max 0-33 on each.
 */
static void test_run0(void)
{
	for (unsigned r = 0; r < 2; r++)
		for (unsigned a = 0; a <= BU_FRAMES; a++) {
			/* a = 32: every frame an order-0 head, none free. */
			uint64_t w =
				a < BU_FRAMES
					? bu_make(a, BU_FRAMES, r != 0)
					: bu_put_block(bu_make(a - 1, BU_FRAMES,
							       r != 0),
						       a - 1, 0);
			for (unsigned max = 0; max <= BU_FRAMES + 1; max++)
				check_run0(w, max);
		}
	rng_s = 49;
	for (unsigned t = 0; t < 4000; t++) {
		unsigned lo = (unsigned)(rng() % 4), hi = BU_FRAMES;
		if (rng() % 4 == 0)
			hi -= (unsigned)(rng() % 4);
		uint64_t w = bu_make(lo, hi, true), nw;
		for (unsigned s = 0; s < 40; s++) {
			unsigned k = (unsigned)(rng() % 3) == 0
					     ? (unsigned)(rng() % BU_ORDER)
					     : 0,
				 i = (unsigned)(rng() % BU_FRAMES), off, o;
			if (rng() % 3 == 0) {
				if (bu_block_order(w, i, &o) == BUDDY_OK &&
				    bu_free(w, i, o, &nw) == BUDDY_OK &&
				    nw != BU_CORE)
					w = nw;
			} else if (bu_alloc(w, k, BU_FRAMES, &nw, &off) ==
				   BUDDY_OK) {
				w = nw;
			}
			check_run0(w, (unsigned)(rng() % (BU_FRAMES + 2)));
		}
	}
	printf("run0: %lu runs taken\n", n_run0);
	CHECK(n_run0 > 1000);
}

int main(int argc, char **argv)
{
	test_windows();
	test_reach();
	test_run0();
	return check_model_main(argc, argv, "test_buddy_unit", 40, 20000,
				run_random);
}
