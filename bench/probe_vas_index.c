/*
 * probe_vas_index.c: what a compact leaf index would buy vas_lookup at
 * 10^6 ranges, and what bounds a lookup on this machine (docs/design.md
 * 3.2, "A compact leaf index, probed"). Not a benchmark of the allocator:
 * a probe of its internals (vas_i.h), single-threaded.
 *
 * It fills a vas as bench_vas does (bench_vas_fill.c: same ranges, huge-page
 * node arena) and then builds, once, a static index of the address tree's
 * leaves: their lower fences as 32-bit narrow keys (key >> px_shift), sorted,
 * 4 bytes a leaf, and beside each the leaf's address and count (the count
 * places the leaf's 8-key window before the leaf's first line arrives, as
 * the count copy A9 does in the tree's reader). The index is not kept by
 * writers: the probe does no writes after it is built. Rounds, each timing
 * the same stream of uniform keys through:
 *
 *   reader   vas_lookup(), today's reader (the tree, lock coupling)
 *   index    the index: a branchless binary search of the narrow keys, the
 *            leaf's window prefetched from the count, the leaf's version,
 *            count and fences checked (the fences from a side array, which
 *            a real design keeps in the leaf's first line), 8 keys counted,
 *            the entry read and the version validated; anything else (the
 *            window does not bracket the key, the key below the leaf's
 *            first key) goes to vt_read_le(); then vas_lookup()'s checks
 *   index16  the same, the search one line a level (px_lvl: 16 keys a line)
 *   .../nb   the same without a branch on the answer (found, allocated)
 *   search   the index's search alone, then the leaf's first line (one
 *            load of its version; 16,667 first lines: 1 MiB, mostly cached)
 *   search16 the same with index16's search
 *   one      search16's search, then the one line of the leaf's keys that
 *            the interpolation names (no header, no validation): the floor
 *            of an index with a one-line leaf
 *   one/noep the same outside an epoch section (lf_epoch_enter/exit)
 *   line     one key of a random leaf (the leaf drawn from the key without
 *            a search, the slot at random): the floor of one memory access
 *            per lookup, with as much overlap as the processor finds
 *   line/ep  the same inside an epoch section, as a lookup is
 *   index/x4 index's lookups 4 at a time in one epoch section: the four
 *            searches and prefetches, then the four leaf reads (a batched
 *            lookup, which vas.h does not offer), per lookup
 *   tree/x4  the same batches through the tree's reader, no index: the
 *            four descents (vt_rleaf(), each prefetching its leaf), then
 *            the four leaf searches (vas_tree.c is compiled in for its
 *            static steps)
 *
 * Per-thread CPU time (CLOCK_THREAD_CPUTIME_ID) and wall time per lookup;
 * before timing, every index answer is checked against vas_lookup's over
 * 10^5 keys (a mismatch exits 1).
 *
 * Usage: probe_vas_index [ranges (10^6)] [lookups a round (3*10^6)]
 *                        [rounds (5)]
 */
#define _GNU_SOURCE
#include "bench.h"
#include "bench_arena.h"
#include "bench_vas.h"
#include "vas_i.h"
/*
 * The tree's reader steps (static in vas_tree.c) for the batched tree
 * lookup below: the file is compiled into the probe, so the library's copy
 * of it is not linked.
 */
#include "vas_tree.c"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PX_BASE (1ULL << 40)

struct px_ent {
	struct vas_node *n;
	uint64_t count;
};

static struct bench_arena px_arena;
static struct vas px_vas;
static struct vas_ctx px_ctx;
static uint32_t *px_key;      /* narrow lower fences, sorted, padded */
static struct px_ent *px_ent; /* the leaf and its count */
static uint64_t *px_fence;    /* exact fences: lo of leaf i (i = nleaf: nq) */
static uint32_t px_nleaf, px_cap;
/*
 * The narrow keys again as a static B+ layout of 16 keys a line: level 0
 * the sorted keys, level l + 1 the first key of each line of level l, up
 * to one line; padded with UINT32_MAX. A search reads one line a level.
 */
#define PX_B 16
static uint32_t *px_lvl[8], px_nlvl;
static unsigned px_shift;
static volatile bool px_nobranch_v;
#define px_nobranch px_nobranch_v

static void *px_get(void *arg)
{
	return bench_arena_get(arg);
}

static void px_put(void *arg, void *node)
{
	bench_arena_put(arg, node);
}

static int px_alloc_at(void *a, unsigned id, uint64_t addr, uint64_t size)
{
	(void)a;
	(void)id;
	return vas_alloc_at(&px_ctx, addr, size, 1) == VAS_OK ? 0 : -1;
}

static uint64_t px_rand(uint64_t *s) /* xorshift64* */
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static double px_now(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The leaves in key order, with their lower fences (quiescent tree). */
static void px_walk(struct vas_node *n, uint64_t lo)
{
	uint32_t c = lf_olc_load_u32(&n->count);
	if (lf_olc_load_u32(&n->level) == 0) {
		if (px_nleaf == px_cap)
			abort(); /* sized from the node count */
		px_key[px_nleaf] = (uint32_t)(lo >> px_shift);
		px_fence[px_nleaf] = lo;
		px_ent[px_nleaf] = (struct px_ent){ .n = n, .count = c };
		px_nleaf++;
		return;
	}
	for (uint32_t i = 0; i <= c; i++)
		px_walk(lf_olc_load_ptr(&n->u.in.child[i]),
			i > 0 ? lf_olc_load_u64(&n->key[i - 1]) : lo);
}

/* Keys <= nk among the 16 of line l (straight-line, vectorizable). */
static inline uint32_t px_count16(const uint32_t *l, uint32_t nk)
{
	uint32_t c = 0;
	for (unsigned j = 0; j < PX_B; j++)
		c += l[j] <= nk ? 1u : 0u;
	return c;
}

/* The same slot as px_search(), one line a level (px_lvl). */
static inline uint32_t px_search16(uint64_t k)
{
	uint32_t nk = (uint32_t)(k >> px_shift), b = 0;
	for (uint32_t l = px_nlvl; l-- > 0;)
		b = b * PX_B + px_count16(&px_lvl[l][b * PX_B], nk) - 1;
	return b;
}

static void px_build16(void)
{
	uint32_t n = px_nleaf, stride = 1;
	const uint32_t *src = px_key;
	for (px_nlvl = 0;; px_nlvl++) {
		uint32_t lines = (n + PX_B - 1) / PX_B;
		uint32_t *l = aligned_alloc(64, (size_t)lines * 64);
		if (l == NULL || px_nlvl == 8)
			abort();
		for (uint32_t j = 0; j < lines * PX_B; j++)
			l[j] = j < n ? src[(size_t)j * stride] : UINT32_MAX;
		px_lvl[px_nlvl] = l;
		if (lines == 1) {
			px_nlvl++;
			return;
		}
		/* The next level: the first key of each line of this one. */
		src = l;
		stride = PX_B;
		n = lines;
	}
}

/* The index's slot for key k: the last narrow fence <= k's. */
static inline uint32_t px_search(uint64_t k)
{
	const uint32_t *b = px_key;
	uint32_t n = px_nleaf, nk = (uint32_t)(k >> px_shift);
	while (n > 1) {
		uint32_t h = n / 2;
		b = b[h] <= nk ? b + h : b;
		n -= h;
	}
	return (uint32_t)(b - px_key);
}

#define PX_LE(j) (lf_olc_load_u64(&w[j]) <= k ? 1u : 0u)
/* 1: e is the entry with the greatest key <= k; 0: none; -1: the reader. */
/* Where the index places key k: its leaf, the count, the window's start. */
struct px_place {
	struct vas_node *n;
	uint32_t hint, a;
	bool ok; /* false: the fences or the count rule the index out */
};

/* The index's search for k, and the prefetch of what the leaf read needs. */
static inline struct px_place px_place(uint64_t k, bool b16)
{
	uint32_t i = b16 ? px_search16(k) : px_search(k);
	struct px_place pl = { .n = px_ent[i].n,
			       .hint = (uint32_t)px_ent[i].count };
	uint64_t lo = px_fence[i], hi = px_fence[i + 1];
	if (pl.hint <= 10 || k < lo || k >= hi)
		return pl;
	uint32_t g = (uint32_t)((k - lo) * pl.hint / (hi - lo)) + 1;
	g = g < pl.hint ? g : pl.hint;
	pl.a = g > 4 ? g - 4 : 0;
	pl.a = pl.a < pl.hint - 8 ? pl.a : pl.hint - 8;
	uint32_t s = pl.a > 0 ? pl.a - 1 : 0;
	struct vas_node *n = pl.n;
	vas_prefetch(n);
	vas_prefetch(&n->key[s]);
	vas_prefetch((const char *)&n->key[s] + 79);
	vas_prefetch(&n->u.l[s]);
	vas_prefetch((const char *)&n->u.l[s] + 64);
	vas_prefetch((const char *)&n->u.l[s] + 143);
	pl.ok = true;
	return pl;
}

/* The leaf read at pl, validated: 1 and e; -1: the reader. */
static inline int px_read(const struct px_place *pl, uint64_t k,
			  struct vt_ent *e)
{
	struct vas_node *n = pl->n;
	uint32_t hint = pl->hint, a = pl->a;
	uint64_t v;
	if (!pl->ok || !lf_vlock_read_lock(&n->lock, &v) ||
	    lf_olc_load_u32(&n->level) != 0 ||
	    lf_olc_load_u32(&n->count) != hint)
		return -1;
	const lf_atomic_u64 *w = &n->key[a];
	if ((a > 0 && lf_olc_load_u64(&n->key[a - 1]) > k) ||
	    (a + 8 < hint && lf_olc_load_u64(&n->key[a + 8]) <= k))
		return -1;
	uint32_t j = a + PX_LE(0) + PX_LE(1) + PX_LE(2) + PX_LE(3) + PX_LE(4) +
		     PX_LE(5) + PX_LE(6) + PX_LE(7);
	if (j == 0)
		return -1;
	e->key = lf_olc_load_u64(&n->key[j - 1]);
	e->val = lf_olc_load_u64(&n->u.l[j - 1].val);
	e->tag = lf_olc_load_uptr(&n->u.l[j - 1].tag);
	return lf_vlock_validate(&n->lock, v) ? 1 : -1;
}

static inline int px_index(uint64_t k, struct vt_ent *e, bool b16)
{
	struct px_place pl = px_place(k, b16);
	return px_read(&pl, k, e);
}
#undef PX_LE

/* vas_lookup() through the index: 0 and the range's start, or -1. */
static inline int px_lookup_index(uint64_t k, uint64_t *start, uint64_t *slow,
				  bool b16)
{
	struct vt_ent e;
	uint64_t restarts = 0;
	lf_epoch_enter(&px_ctx.rec);
	int f = px_index(k, &e, b16);
	if (f < 0) {
		(*slow)++;
		f = vt_read_le(&px_vas.addr, k, &e, &restarts) ? 1 : 0;
	}
	lf_epoch_exit(&px_ctx.rec);
	if (px_nobranch) {
		/* The same answer without a branch on it: see main(). */
		uint64_t ok = (uint64_t)(f != 0) &
			      (uint64_t)!vas_val_free(e.val) &
			      (uint64_t)(e.key + vas_val_len(e.val) > k);
		*start = e.key & (0 - ok);
		return (int)ok - 1;
	}
	if (f == 0 || vas_val_free(e.val) || e.key + vas_val_len(e.val) <= k)
		return -1;
	*start = e.key;
	return 0;
}

/*
 * PX_BATCH lookups through the index in one epoch section, the searches
 * and prefetches of all first, then the leaf reads: what a batched lookup
 * (not vas.h's API) would overlap. start[b]: the range's start, or
 * UINT64_MAX if none holds k[b]. Returns how many found a range.
 */
#define PX_BATCH 4
static uint64_t px_lookup_batch(const uint64_t *k, uint64_t *start,
				uint64_t *slow)
{
	struct px_place pl[PX_BATCH];
	uint64_t found = 0;
	lf_epoch_enter(&px_ctx.rec);
	for (unsigned b = 0; b < PX_BATCH; b++)
		pl[b] = px_place(k[b], false);
	for (unsigned b = 0; b < PX_BATCH; b++) {
		struct vt_ent e;
		uint64_t restarts = 0;
		int f = px_read(&pl[b], k[b], &e);
		if (f < 0) {
			(*slow)++;
			f = vt_read_le(&px_vas.addr, k[b], &e, &restarts) ? 1
									  : 0;
		}
		bool hit = f == 1 && !vas_val_free(e.val) &&
			   e.key + vas_val_len(e.val) > k[b];
		start[b] = hit ? e.key : UINT64_MAX;
		found += hit;
	}
	lf_epoch_exit(&px_ctx.rec);
	return found;
}

/*
 * The same batch through the tree's own reader: the four descents (each
 * prefetches its leaf's first line and window from the count copy, A9),
 * then the four leaf searches; what vt_read_le() does not answer from the
 * leaf it reached (a restart, no key <= k in the leaf) goes to
 * vt_read_le() whole. No index: what a batched lookup on today's tree
 * would overlap.
 */
static uint64_t px_tree_batch(const uint64_t *k, uint64_t *start,
			      uint64_t *slow)
{
	struct vt_leaf f[PX_BATCH];
	bool ok[PX_BATCH];
	uint64_t found = 0;
	lf_epoch_enter(&px_ctx.rec);
	for (unsigned b = 0; b < PX_BATCH; b++)
		ok[b] = vt_rleaf(&px_vas.addr, k[b], &f[b]);
	for (unsigned b = 0; b < PX_BATCH; b++) {
		struct vt_ent e;
		uint64_t restarts = 0;
		uint32_t c, i;
		bool got = false;
		if (ok[b] &&
		    (c = vt_rcount(&px_vas.addr, f[b].n)) != UINT32_MAX &&
		    (i = vt_rsearch(&f[b], c, k[b], true)) > 0)
			got = vt_rent(&f[b], i - 1, &e);
		if (!got) {
			(*slow)++;
			got = vt_read_le(&px_vas.addr, k[b], &e, &restarts);
		}
		bool hit = got && !vas_val_free(e.val) &&
			   e.key + vas_val_len(e.val) > k[b];
		start[b] = hit ? e.key : UINT64_MAX;
		found += hit;
	}
	lf_epoch_exit(&px_ctx.rec);
	return found;
}

enum {
	PX_READER,
	PX_INDEX,
	PX_INDEX16,
	PX_INDEXNB,
	PX_INDEX16NB,
	PX_SEARCH,
	PX_SEARCH16,
	PX_ONE,
	PX_ONENE,
	PX_LINE,
	PX_LINEE,
	PX_BATCHED,
	PX_TREEBATCH,
	PX_MODES
};
static const char *const px_name[PX_MODES] = {
	"reader",  "index",    "index16", "index/nb", "index16/nb",
	"search",  "search16", "one",     "one/noep", "line",
	"line/ep", "index/x4", "tree/x4"
};

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000000;
	uint64_t iters = argc > 2 ? strtoull(argv[2], NULL, 0) : 3000000;
	unsigned rounds = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 0) : 5;
	struct vas_node_source src = { .get = px_get,
				       .put = px_put,
				       .arg = &px_arena };
	struct bench_vas_ops ops = { .alloc_at = px_alloc_at };

	bench_arena_init(&px_arena, VAS_NODE_SIZE, 4096);
	if (n == 0 || iters == 0 ||
	    vas_create(&px_vas, PX_BASE, BENCH_VAS_FILL_SIZE(n),
		       BENCH_VAS_QUANTUM, &src, 0, 64) != VAS_OK ||
	    vas_ctx_register(&px_vas, &px_ctx) != VAS_OK)
		return 2;
	uint64_t spanq = bench_vas_fill(&ops, NULL, PX_BASE, n, NULL, NULL);
	if (spanq == 0)
		return 2;
	unsigned bits = 64 - (unsigned)__builtin_clzll(px_vas.nq);
	px_shift = bits > 32 ? bits - 32 : 0;
	px_cap = (uint32_t)px_vas.addr.nodes + 1;
	px_key = aligned_alloc(64, ((px_cap + 16) * 4 + 63) / 64 * 64);
	px_ent = aligned_alloc(64,
			       ((px_cap + 1) * sizeof(*px_ent) + 63) / 64 * 64);
	px_fence = malloc((px_cap + 1) * sizeof(*px_fence));
	if (px_key == NULL || px_ent == NULL || px_fence == NULL)
		return 2;
	px_walk(lf_olc_load_ptr(&px_vas.addr.root), 0);
	px_fence[px_nleaf] = px_vas.nq;
	px_build16();
	printf("%llu ranges, %u leaves, index %u KiB of narrow keys (shift %u) "
	       "+ %u KiB of leaves and counts\n",
	       (unsigned long long)n, px_nleaf, px_nleaf * 4 / 1024, px_shift,
	       (unsigned)(px_nleaf * sizeof(*px_ent) / 1024));

	/* The index answers what the reader answers. */
	uint64_t rng = 7, slow = 0;
	for (unsigned t = 0; t < 100000; t++) {
		uint64_t q = ((px_rand(&rng) >> 32) * spanq) >> 32, s1, s2;
		struct vas_range r;
		int a = vas_lookup(&px_ctx, PX_BASE + q * BENCH_VAS_QUANTUM,
				   &r) == VAS_OK
				? 0
				: -1;
		int b = px_lookup_index(q, &s2, &slow, false);
		if (px_lookup_index(q, &s2, &slow, true) != b ||
		    px_search16(q) != px_search(q))
			b = 2;
		s1 = (r.start - PX_BASE) / BENCH_VAS_QUANTUM;
		uint64_t kq[PX_BATCH] = { q, q, q, q }, sq[PX_BATCH];
		if (px_lookup_batch(kq, sq, &slow) != (a == 0 ? PX_BATCH : 0) ||
		    (a == 0 && sq[PX_BATCH - 1] != s1))
			b = 2;
		if (px_tree_batch(kq, sq, &slow) != (a == 0 ? PX_BATCH : 0) ||
		    (a == 0 && sq[0] != s1))
			b = 2;
		if (a != b || (a == 0 && s1 != s2)) {
			fprintf(stderr, "index and reader differ at %llu\n",
				(unsigned long long)q);
			return 1;
		}
	}
	printf("epoch sections: %s\n",
	       px_ctx.rec.asym ? "asymmetric (a compiler barrier)"
			       : "fenced (a seq_cst fence at each entry)");
	bench_print_load("start");
	for (unsigned round = 0; round < rounds; round++) {
		for (unsigned m = 0; m < PX_MODES; m++) {
			uint64_t r2 = 12345 + round, sink = 0;
			slow = 0;
			px_nobranch_v = m == PX_INDEXNB || m == PX_INDEX16NB;
			double w0 = px_now(CLOCK_MONOTONIC);
			double c0 = px_now(CLOCK_THREAD_CPUTIME_ID);
			uint64_t kb[PX_BATCH], sb[PX_BATCH];
			unsigned nb = 0;
			for (uint64_t it = 0; it < iters; it++) {
				uint64_t r = px_rand(&r2);
				uint64_t q = ((r >> 32) * spanq) >> 32, s = 0;
				struct vas_range rr;
				uint64_t v = 0;
				switch (m) {
				case PX_BATCHED:
				case PX_TREEBATCH:
					kb[nb++] = q;
					if (nb < PX_BATCH)
						break;
					nb = 0;
					s = m == PX_BATCHED
						    ? px_lookup_batch(kb, sb,
								      &slow)
						    : px_tree_batch(kb, sb,
								    &slow);
					break;
				case PX_READER:
					if (vas_lookup(
						    &px_ctx,
						    PX_BASE +
							    q * BENCH_VAS_QUANTUM +
							    (r & 4095),
						    &rr) == VAS_OK)
						s = rr.start;
					break;
				case PX_INDEX:
				case PX_INDEXNB:
					px_lookup_index(q, &s, &slow, false);
					break;
				case PX_INDEX16:
				case PX_INDEX16NB:
					px_lookup_index(q, &s, &slow, true);
					break;
				case PX_SEARCH16:
					lf_epoch_enter(&px_ctx.rec);
					if (lf_vlock_read_lock(
						    &px_ent[px_search16(q)]
							     .n->lock,
						    &v))
						s = v;
					lf_epoch_exit(&px_ctx.rec);
					break;
				case PX_SEARCH:
					lf_epoch_enter(&px_ctx.rec);
					if (lf_vlock_read_lock(
						    &px_ent[px_search(q)]
							     .n->lock,
						    &v))
						s = v;
					lf_epoch_exit(&px_ctx.rec);
					break;
				case PX_ONE:
				case PX_ONENE: {
					/* search16, then the one key line that
					 * the interpolation names in the leaf
					 */
					if (m == PX_ONE)
						lf_epoch_enter(&px_ctx.rec);
					uint32_t i = px_search16(q);
					const struct vas_node *ln = px_ent[i].n;
					uint64_t lo = px_fence[i];
					uint32_t g =
						(uint32_t)((q - lo) *
							   px_ent[i].count /
							   (px_fence[i + 1] -
							    lo));
					s = lf_olc_load_u64(&ln->key[g]);
					if (m == PX_ONE)
						lf_epoch_exit(&px_ctx.rec);
					break;
				}
				case PX_LINEE: {
					lf_epoch_enter(&px_ctx.rec);
					s = lf_olc_load_u64(
						&px_ent[((r >> 32) *
							 px_nleaf) >>
							32]
							 .n
							 ->key[r %
							       px_ent[0]
								       .count]);
					lf_epoch_exit(&px_ctx.rec);
					break;
				}
				default:
					s = lf_olc_load_u64(
						&px_ent[((r >> 32) *
							 px_nleaf) >>
							32]
							 .n
							 ->key[r %
							       px_ent[0]
								       .count]);
				}
				sink += s;
			}
			double c = (px_now(CLOCK_THREAD_CPUTIME_ID) - c0) /
				   (double)iters;
			double w =
				(px_now(CLOCK_MONOTONIC) - w0) / (double)iters;
			printf("round %u %-7s cpu %6.1f ns  wall %6.1f ns  "
			       "to the reader %5.2f%%  (%llx)\n",
			       round, px_name[m], c, w,
			       100.0 * (double)slow / (double)iters,
			       (unsigned long long)(sink & 0xf));
		}
	}
	bench_print_load("end");
	return 0;
}
