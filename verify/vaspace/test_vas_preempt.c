/*
 * test_vas_preempt.c: lookups of the vas preempted by a writer, at every
 * kind of atomic step, deterministically (verify/preempt.h: the vaspace
 * and lockfree sources are compiled into this test with every atomic
 * operation interposed).
 *
 * Each step picks a write (an allocation with either policy, an alloc_at
 * inside a free range, a free of a whole allocation, its head, tail or
 * middle, a replace, unmap or protect over several ranges and holes), or,
 * one step in four, up to four writes made back to back while the reader
 * is paused (so that a node dropped by one and taken back from the
 * freelist by the next comes back under the reader: V1 across reuse, and
 * in LF_DEBUG builds vn_take() asserts the revived word is above the word
 * the node left the tree with), and an address (near the write, or anywhere),
 * counts the atomic operations of a lookup of that address, and runs the lookup
 * again with the write injected before its n-th operation, n chosen at random:
 * as if the reader were preempted there while another CPU made the whole write.
 * One step in two the lookup is a batch (vas_lookup_n, several addresses
 * around this one), each of whose answers must be linearizable on its own.
 * A lookup is linearizable (vas.h), so its answer must be the reference's
 * answer either before the write or after it: the same return code and,
 * if found, the same range exactly (start, size, tag). A torn entry (the
 * key of one range with the length or tag of another), a range that was
 * never there, or a lost one fails. The write's own result must match the
 * reference, and every 64 steps the whole range list and vas_check().
 *
 * 3-key nodes so that writes split, merge and borrow all the time, and
 * high-water marks 0 and 2, so nodes are retired and reused under the
 * reader (whose epoch section keeps them valid, E3). --keys 16: nodes of
 * 16, which hold more keys than the reader's search window, so that the
 * window (interpolated from the fences, docs/design.md 3.2) and its
 * fallback read keys a write is moving.
 *
 * --caching 1: per-context caching on (docs/design.md 3.3). The writer's
 * small allocations and whole small frees are then leaf-local writes (its
 * cached ranges reused, its reservation carved), injected at every kind of
 * step of the lookup like the others: one leaf changed under its lock is
 * one step for the reader too. Placement outside the caches may differ
 * from the reference's, so the reference replays the writes after the
 * lookup, each allocation at the address the vas chose (checked free
 * there), taking its answers between them; range lists are compared with
 * free neighbours merged.
 *
 * Usage: test_vas_preempt [--seeds N] [--steps N] [--seed S] [--keys K]
 *                         [--caching 1]
 */
#include "preempt.h"
#include "vt_ref.h"

#define Q ((uint64_t)4096)
#define NQ ((uint64_t)384)
#define BASE ((uint64_t)0x40000000)
#define TARGET 48 /* allocated ranges the workload drifts around */

enum wkind { W_ALLOC, W_ALLOC_AT, W_FREE, W_REPLACE, W_UNMAP, W_PROTECT };

#define MAXW 4 /* writes injected at one reader step */

struct write {
	enum wkind kind;
	uint64_t addr, size, align;
	int policy;
	uintptr_t tag;
	uint32_t attr;
	int rc;       /* the vas's answer */
	uint64_t got; /* the address an allocation got */
};

static struct vt_src src;
static struct vas *vas;
static struct vas_ctx *rctx, *wctx;
static struct vt_ref ref;
static uint64_t rng, seed, step;
static uintptr_t next_tag;
static bool caching;
static uint64_t local_total; /* leaf-local writes, all seeds */
static uint64_t batches;     /* steps that looked up with vas_lookup_n */
/* Restarts each kind of lookup counted in its context, this seed. */
static uint64_t restarts_single, restarts_batch;

static uint64_t rnd_below(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? rng % n : 0;
}

static unsigned allocated_ranges(void)
{
	unsigned n = 0;
	for (size_t i = 0; i < ref.n; i++)
		n += ref.r[i].allocated;
	return n;
}

/* A random range of ref that is (or is not) allocated, or NULL. */
static const struct vas_range *pick(bool allocated)
{
	size_t start = rnd_below(ref.n);
	for (size_t j = 0; j < ref.n; j++) {
		const struct vas_range *r = &ref.r[(start + j) % ref.n];
		if (r->allocated == allocated)
			return r;
	}
	return NULL;
}

/* A random quantum-aligned piece of r: whole, head, tail or middle. */
static void piece(const struct vas_range *r, uint64_t *a, uint64_t *size)
{
	uint64_t nq = r->size / Q;
	uint64_t off = 0, len = nq;
	switch (rnd_below(4)) {
	case 1: /* head */
		len = 1 + rnd_below(nq);
		break;
	case 2: /* tail */
		off = rnd_below(nq);
		len = nq - off;
		break;
	case 3: /* middle */
		off = rnd_below(nq);
		len = 1 + rnd_below(nq - off);
		break;
	}
	*a = r->start + off * Q;
	*size = len * Q;
}

/* A span over several ranges and holes: up to 3 ranges from one. */
static void span(uint64_t *a, uint64_t *size)
{
	size_t i = rnd_below(ref.n), j = i + rnd_below(3);
	j = j < ref.n ? j : ref.n - 1;
	uint64_t s = ref.r[i].start + rnd_below(ref.r[i].size / Q) * Q;
	uint64_t e = ref.r[j].start + (1 + rnd_below(ref.r[j].size / Q)) * Q;
	*a = s;
	*size = e > s ? e - s : Q;
}

static void choose_write(struct write *w)
{
	bool grow = allocated_ranges() < TARGET;
	unsigned r = (unsigned)rnd_below(8);
	const struct vas_range *fr = pick(false), *al = pick(true);
	*w = (struct write){ .tag = next_tag++,
			     .attr = (uint32_t)rnd_below(3) };
	if (rnd_below(3) == 0) { /* the mmap-grade writers */
		unsigned k = (unsigned)rnd_below(3);
		w->kind = k == 0 ? W_REPLACE : k == 1 ? W_UNMAP : W_PROTECT;
		if (w->kind == W_PROTECT && al != NULL && rnd_below(2))
			piece(al, &w->addr, &w->size);
		else
			span(&w->addr, &w->size);
		if (w->kind == W_PROTECT && rnd_below(2))
			w->tag = ref.r[rnd_below(ref.n)].tag; /* merges */
		return;
	}
	if (al != NULL && (r < (grow ? 2u : 5u) || fr == NULL)) {
		w->kind = W_FREE;
		piece(al, &w->addr, &w->size);
	} else if (fr != NULL && r % 2 == 0) {
		w->kind = W_ALLOC_AT;
		piece(fr, &w->addr, &w->size);
	} else {
		w->kind = W_ALLOC;
		w->size = (1 + rnd_below(rnd_below(4) == 0 ? 24 : 4)) * Q;
		w->align = rnd_below(4) == 0 ? Q << rnd_below(4) : 0;
		w->policy = rnd_below(2) ? VAS_BEST_FIT : VAS_FIRST_FIT;
	}
}

/* One write, as the preempting CPU makes it. */
static void do_one(struct write *w)
{
	switch (w->kind) {
	case W_REPLACE:
		w->rc = vas_replace(wctx, w->addr, w->size, w->attr, w->tag,
				    NULL, NULL);
		break;
	case W_UNMAP:
		w->rc = vas_unmap(wctx, w->addr, w->size, NULL, NULL, NULL);
		break;
	case W_PROTECT:
		w->rc = vas_protect(wctx, w->addr, w->size, VAS_ATTR_MASK,
				    w->attr, w->tag, VAS_PROT_TAG, NULL, NULL);
		break;
	case W_ALLOC:
		w->rc = vas_alloc(wctx, w->size, w->align, w->policy, w->tag,
				  &w->got);
		break;
	case W_ALLOC_AT:
		w->rc = vas_alloc_at(wctx, w->addr, w->size, w->tag);
		break;
	case W_FREE:
		w->rc = vas_free(wctx, w->addr, w->size);
		break;
	}
}

/* Several writes at one reader step: a node dropped by one and taken back
 * from the freelist by the next comes back under the paused reader. */
struct writes {
	struct write w[MAXW];
	unsigned n;
};

static void do_write(void *arg)
{
	struct writes *ws = arg;
	for (unsigned i = 0; i < ws->n; i++)
		do_one(&ws->w[i]);
}

/* The same write on the reference; its return code and address. */
static int ref_write(const struct write *w, uint64_t *got)
{
	struct vt_pieces p;
	switch (w->kind) {
	case W_REPLACE:
		return vt_ref_replace(&ref, w->addr, w->size, w->attr, w->tag,
				      &p);
	case W_UNMAP:
		return vt_ref_unmap(&ref, w->addr, w->size, &p);
	case W_PROTECT:
		return vt_ref_protect(&ref, w->addr, w->size, VAS_ATTR_MASK,
				      w->attr, w->tag, VAS_PROT_TAG, &p);
	case W_ALLOC:
		if (caching && w->rc == VAS_OK) { /* where the vas put it */
			*got = w->got;
			return vt_ref_alloc_at(&ref, w->got, w->size, w->tag);
		}
		return vt_ref_alloc(&ref, w->size, w->align, w->policy, w->tag,
				    got, false);
	case W_ALLOC_AT:
		return vt_ref_alloc_at(&ref, w->addr, w->size, w->tag);
	default:
		return vt_ref_free(&ref, w->addr, w->size);
	}
}

struct answer {
	int rc;
	struct vas_range r;
};

static bool answer_eq(const struct answer *a, const struct answer *b)
{
	return a->rc == b->rc && (a->rc != VAS_OK || vt_range_eq(&a->r, &b->r));
}

static void answer_print(const char *what, const struct answer *a)
{
	if (a->rc != VAS_OK)
		fprintf(stderr, "  %s: %s\n", what, vas_strerror(a->rc));
	else
		vt_range_print(what, &a->r);
}

/* The whole range list (free ranges too) and the tree's invariants. */
static void verify_all(void)
{
	struct vt_snap s = { 0 };
	CHECK_EQ(vt_snap_take(rctx, BASE, BASE + NQ * Q, &s), VAS_OK);
	if (caching) { /* free space may be several entries: merge them */
		size_t k = 0;
		for (size_t i = 0; i < s.n; i++) {
			if (k > 0 && !s.r[i].allocated &&
			    !s.r[k - 1].allocated) {
				s.r[k - 1].size += s.r[i].size;
				continue;
			}
			s.r[k++] = s.r[i];
		}
		s.n = k;
	}
	CHECK(vt_ref_valid(&ref));
	CHECK(vt_list_eq(s.r, s.n, ref.r, ref.n));
	vt_snap_free(&s);
	uint64_t where = 0;
	int rc = vas_check(vas, &where);
	if (rc != 0)
		fprintf(stderr, "vas_check: A%d at %#" PRIx64 "\n", rc, where);
	CHECK_EQ(rc, 0);
}

static const char *wname(enum wkind k)
{
	static const char *const n[] = { "alloc",   "alloc_at", "free",
					 "replace", "unmap",    "protect" };
	return n[k];
}

/*
 * One step in two looks up a batch (vas_lookup_n) of up to NB addresses,
 * addr among them at a random place and the others anywhere: with the
 * writes injected at a random operation of the whole call, most land
 * between one address's descent and its leaf's validation, the others'
 * descents in between (docs/design.md 3.2, "Lookups in batches"). Each
 * answer must be linearizable on its own.
 */
#define NB 12

static void one_step(void)
{
	struct writes ws = {
		.n = 1 + (rnd_below(4) == 0 ? (unsigned)rnd_below(MAXW) : 0)
	};
	struct answer ans[MAXW + 1][NB], got[NB];
	int ref_rc[MAXW];
	uint64_t ref_got[MAXW] = { 0 }, a[NB], addr;
	bool batch = rnd_below(2) == 0;
	unsigned nb = batch ? 1 + (unsigned)rnd_below(NB) : 1;
	unsigned at = (unsigned)rnd_below(nb);
	choose_write(&ws.w[0]);
	if (ws.w[0].kind != W_ALLOC && rnd_below(4) != 0) {
		/* Near the write: its range, or a few quanta around it. */
		uint64_t lo = ws.w[0].addr >= BASE + 4 * Q
				      ? ws.w[0].addr - 4 * Q
				      : BASE;
		uint64_t hi = ws.w[0].addr + ws.w[0].size + 4 * Q;
		hi = hi > BASE + NQ * Q ? BASE + NQ * Q : hi;
		addr = lo + rnd_below(hi - lo);
	} else {
		addr = BASE + rnd_below(NQ * Q);
	}
	for (unsigned b = 0; b < nb; b++)
		a[b] = b == at ? addr : BASE + rnd_below(NQ * Q);
		/* The reference's answers before each write and after the last
		 * (with caching, after the lookup: the writes chosen now). */
#define REF_ANSWERS(i)                                                         \
	for (unsigned b = 0; b < nb; b++)                                      \
	ans[i][b].rc = vt_ref_lookup(&ref, a[b], &ans[i][b].r)
	for (unsigned i = 0; i < ws.n; i++) {
		if (i > 0)
			choose_write(&ws.w[i]);
		if (caching)
			continue;
		REF_ANSWERS(i);
		ref_rc[i] = ref_write(&ws.w[i], &ref_got[i]);
	}
	if (caching) {
		REF_ANSWERS(0);
	} else {
		REF_ANSWERS(ws.n);
	}

	/* How many interposed operations the lookup makes. */
	preempt_arm(0, NULL, NULL);
	struct vas_range dummy[NB];
	int drc[NB];
	if (batch)
		(void)vas_lookup_n(rctx, a, nb, dummy, drc);
	else
		(void)vas_lookup(rctx, addr, &dummy[0]);
	unsigned long k = preempt_count();
	unsigned long n = 1 + rnd_below(k);

	/* Relaxed: the test alone runs. */
	uint64_t r0 = lf_load_u64(&rctx->restarts, LF_RELAXED);
	preempt_arm(n, do_write, &ws);
	int hits = 0, rc[NB];
	if (batch) {
		hits = vas_lookup_n(rctx, a, nb, dummy, rc);
		for (unsigned b = 0; b < nb; b++) {
			got[b].rc = rc[b];
			if (rc[b] == VAS_OK)
				got[b].r = dummy[b];
		}
	} else {
		got[0].rc = vas_lookup(rctx, addr, &got[0].r);
	}
	if (!preempt_disarm())
		do_write(&ws);
	*(batch ? &restarts_batch : &restarts_single) +=
		lf_load_u64(&rctx->restarts, LF_RELAXED) - r0;
	for (unsigned i = 0; caching && i < ws.n; i++) {
		ref_rc[i] = ref_write(&ws.w[i], &ref_got[i]);
		REF_ANSWERS(i + 1);
	}
#undef REF_ANSWERS

	for (unsigned i = 0; i < ws.n; i++) {
		CHECK_EQ(ws.w[i].rc, ref_rc[i]);
		if (ws.w[i].kind == W_ALLOC && ref_rc[i] == VAS_OK)
			CHECK_EQ(ws.w[i].got, ref_got[i]);
	}
	int found = 0;
	for (unsigned b = 0; b < nb; b++) {
		/* The writes all ran while the reader was paused: any
		 * state from before the first to after the last is a
		 * linearizable answer. */
		bool ok = false;
		for (unsigned i = 0; i <= ws.n; i++)
			ok |= answer_eq(&got[b], &ans[i][b]);
		found += got[b].rc == VAS_OK;
		if (ok)
			continue;
		fprintf(stderr,
			"FAIL seed %" PRIu64 " step %" PRIu64
			": lookup%s %#" PRIx64 " (%u of %u) preempted at "
			"operation %lu of %lu by %u writes, the first %s "
			"[%#" PRIx64 ", +%#" PRIx64 ")\n",
			seed, step, batch ? "_n" : "", a[b], b, nb, n, k, ws.n,
			wname(ws.w[0].kind),
			ws.w[0].kind == W_ALLOC ? ws.w[0].got : ws.w[0].addr,
			ws.w[0].size);
		answer_print("got", &got[b]);
		answer_print("before", &ans[0][b]);
		answer_print("after", &ans[ws.n][b]);
		CHECK(ok);
	}
	CHECK(!batch || hits == found);
	batches += batch;
}

static uint32_t node_keys = 3;

static void run_seed(uint64_t s, uint64_t steps)
{
	seed = s;
	restarts_single = restarts_batch = 0;
	rng = s * 0x9e3779b97f4a7c15ull + 1;
	next_tag = (uintptr_t)(s + 1) << 32;
	vt_src_init(&src);
	vas = vt_zalloc(sizeof(*vas));
	rctx = vt_zalloc(sizeof(*rctx));
	wctx = vt_zalloc(sizeof(*wctx));
	CHECK_FATAL(vas_create(vas, BASE, NQ * Q, Q, &src.ns, node_keys,
			       s % 2 ? 2 : 0) == VAS_OK);
	CHECK_FATAL(vas_ctx_register(vas, rctx) == VAS_OK);
	CHECK_FATAL(vas_ctx_register(vas, wctx) == VAS_OK);
	if (caching)
		CHECK_FATAL(vas_set_caching(vas, true) == VAS_OK);
	vt_ref_init(&ref, BASE, NQ * Q, Q);
	for (step = 0; step < steps; step++) {
		one_step();
		if (step % 64 == 63)
			verify_all();
	}
	struct vas_stats st;
	vas_stats(vas, &st);
	CHECK(!caching || st.local > 0); /* leaf-local writes were injected */
	/* Writes injected between a lookup's reads and its validations make
	 * it restart: counted in its context (design.md 3.2), by single
	 * lookups and by batches alike. Relaxed: the test alone runs. */
	CHECK(restarts_single > 0 && restarts_batch > 0);
	CHECK(lf_load_u64(&rctx->restarts, LF_RELAXED) > 0);
	CHECK(st.restarts >= lf_load_u64(&rctx->restarts, LF_RELAXED));
	local_total += st.local;
	CHECK_EQ(vas_ctx_unregister(rctx), VAS_OK);
	CHECK_EQ(vas_ctx_unregister(wctx), VAS_OK);
	CHECK_EQ(vas_destroy(vas), VAS_OK);
	CHECK_EQ(atomic_load(&src.live), 0);
	vt_ref_fini(&ref);
	free(vas);
	free(rctx);
	free(wctx);
}

int main(int argc, char **argv)
{
	uint64_t seeds = 8, steps = 3000, only = UINT64_MAX;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--seeds") == 0)
			seeds = strtoull(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--steps") == 0)
			steps = strtoull(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--seed") == 0)
			only = strtoull(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--keys") == 0)
			node_keys = (uint32_t)strtoul(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--caching") == 0)
			caching = strtoul(argv[i + 1], NULL, 0) != 0;
	}
	for (uint64_t s = 0; s < seeds; s++) {
		if (only != UINT64_MAX && s != only)
			continue;
		run_seed(s, steps);
		if (atomic_load(&check_failures) != 0)
			break;
	}
	if (caching)
		printf("test_vas_preempt: %" PRIu64 " leaf-local writes\n",
		       local_total);
	/* Batched lookups were preempted too (one step in two). */
	CHECK(batches > 0);
	printf("test_vas_preempt: %" PRIu64 " batched lookups\n", batches);
	return check_exit("test_vas_preempt");
}
