/*
 * test_vas.c: unit tests of the virtual address range allocator (vas.h) on
 * one thread.
 *
 *  - creation: every bad argument refused with no node kept, the source
 *    failing on any node creation asks for (ENOMEM, nothing kept), the
 *    edge sizes accepted (quantum 1 over 2^32 - 1 bytes, a region at
 *    address 0, one ending just below 2^64), the initial figures;
 *  - contexts: every call on an unregistered context is ENOTREG; destroy
 *    with a context registered is refused;
 *  - every class of bad input of every call returns its own code and
 *    leaves the vas as it was (the whole range list and the figures), and
 *    is counted in rejected[] under its code (lookups are not counted);
 *  - frees of the head, tail, middle and whole of an allocation, the rest
 *    keeping its tag, the freed part coalescing on either side or both;
 *  - alignment as absolute addresses, with a base that is not aligned,
 *    and near the top of the address space (no wrap to 0);
 *  - first fit and best fit choosing different ranges in a crafted layout
 *    (ranges long enough but not aligned enough are not candidates; ties
 *    go to the lowest start);
 *  - lookups at a range's first and last byte, in free space, outside;
 *  - iteration bounds (whole ranges reported, half-open ends) and early
 *    stop;
 *  - the figures of vas_stats, ENOMEM on a failing source mid-way;
 *  - many ranges in small nodes (splits, merges, node reuse);
 *  - (test_vas tall, alone) a tree of 3-key nodes past VAS_MAX_HEIGHT;
 *  - destroy gives every node back to the source (leak check).
 */
#include <sys/mman.h>

#include "vt_common.h"

#define Q ((uint64_t)4096)

struct env {
	struct vt_src src;
	struct vas *v;
	struct vas_ctx *c;
	uint64_t base, size, q;
};

static struct env *env_new(uint64_t base, uint64_t size, uint64_t q,
			   uint32_t keys, uint64_t hw)
{
	struct env *e = calloc(1, sizeof(*e));
	CHECK_FATAL(e);
	vt_src_init(&e->src);
	e->v = vt_zalloc(sizeof(*e->v));
	e->c = vt_zalloc(sizeof(*e->c));
	e->base = base;
	e->size = size;
	e->q = q;
	CHECK_FATAL(vas_create(e->v, base, size, q, &e->src.ns, keys, hw) ==
		    VAS_OK);
	CHECK_FATAL(vas_ctx_register(e->v, e->c) == VAS_OK);
	return e;
}

static void env_check(struct env *e)
{
	uint64_t where = 0;
	int inv = vas_check(e->v, &where);
	if (inv)
		fprintf(stderr, "  invariant A%d broken at %#" PRIx64 "\n", inv,
			where);
	CHECK_EQ(inv, 0);
}

/* Unregister, destroy: every node must be back at the source. */
static void env_free(struct env *e)
{
	env_check(e);
	CHECK_EQ(vas_ctx_unregister(e->c), VAS_OK);
	CHECK_EQ(vas_destroy(e->v), VAS_OK);
	CHECK_EQ(atomic_load(&e->src.live), 0);
	CHECK_EQ(atomic_load(&e->src.gets) - atomic_load(&e->src.failed),
		 atomic_load(&e->src.puts));
	free(e->v);
	free(e->c);
	free(e);
}

static uint64_t env_end(const struct env *e)
{
	return e->base + e->size;
}

/* The whole list must be exactly want[0..n). */
static void env_expect(struct env *e, const struct vas_range *want, size_t n,
		       int line)
{
	struct vt_snap s = { 0 };
	CHECK_EQ(vt_snap_take(e->c, e->base, env_end(e), &s), VAS_OK);
	bool eq = vt_list_eq(s.r, s.n, want, n);
	if (!eq)
		fprintf(stderr, "  (expected at line %d)\n", line);
	CHECK(eq);
	vt_snap_free(&s);
	env_check(e);
}

#define A(s, n, t) ((struct vas_range){ (s), (n), (t), true, 0 })
#define F(s, n) ((struct vas_range){ (s), (n), 0, false, 0 })
#define EXPECT(e, ...)                                                         \
	do {                                                                   \
		const struct vas_range want_[] = { __VA_ARGS__ };              \
		env_expect(e, want_, sizeof(want_) / sizeof(want_[0]),         \
			   __LINE__);                                          \
	} while (0)

/* The state a refused call must leave alone. */
struct state {
	struct vt_snap snap;
	struct vas_stats st;
};

static void state_take(struct env *e, struct state *s)
{
	memset(s, 0, sizeof(*s));
	CHECK_EQ(vt_snap_take(e->c, e->base, env_end(e), &s->snap), VAS_OK);
	vas_stats(e->v, &s->st);
}

/*
 * Same ranges, same figures, same nodes; rejected[-err] one more if
 * counted (err of alloc, alloc_at, free), the other counters as before.
 */
static void state_same(struct env *e, struct state *before, int err,
		       bool counted, int line)
{
	struct state now;
	state_take(e, &now);
	bool ok = vt_list_eq(now.snap.r, now.snap.n, before->snap.r,
			     before->snap.n);
	ok &= vt_stats_same_ranges(&now.st, &before->st);
	ok &= now.st.nodes == before->st.nodes;
	for (int i = 0; i < VAS_NERR; i++) {
		uint64_t want = vt_err(&before->st, -i);
		if (counted && err < 0 && i == -err)
			want++;
		if (vt_err(&now.st, -i) != want) {
			fprintf(stderr,
				"  rejected[%d] %" PRIu64 ", expected %" PRIu64
				"\n",
				i, vt_err(&now.st, -i), want);
			ok = false;
		}
	}
	if (!ok)
		fprintf(stderr, "  state changed by the call at line %d\n",
			line);
	CHECK(ok);
	vt_snap_free(&now.snap);
	vt_snap_free(&before->snap);
	env_check(e);
}

/* call must return err and change nothing (counted: a writer's error). */
#define EXPECT_REFUSED(e, err, counted, call)                                  \
	do {                                                                   \
		struct state st_;                                              \
		state_take(e, &st_);                                           \
		int rc_ = (call);                                              \
		if (rc_ != (err))                                              \
			fprintf(stderr, "  %s: %d (%s)\n", #call, rc_,         \
				vas_strerror(rc_));                            \
		CHECK_EQ(rc_, err);                                            \
		state_same(e, &st_, err, counted, __LINE__);                   \
	} while (0)
#define BAD(e, err, call) EXPECT_REFUSED(e, err, true, call)

static uint64_t ok_alloc(struct env *e, uint64_t size, uint64_t align,
			 enum vas_policy p, uintptr_t tag)
{
	uint64_t a = 0;
	int rc = vas_alloc(e->c, size, align, p, tag, &a);
	CHECK_EQ(rc, VAS_OK);
	return a;
}

/* ---- creation and contexts ---- */

struct bad_create {
	uint64_t base, size, q;
	uint32_t keys;
};

static void test_create_bad(void)
{
	static const struct bad_create bad[] = {
		{ 0x100000, 64 * Q, 0, 8 },          /* quantum 0 */
		{ 0x100000, 64 * 3, 3, 8 },          /* not a power of two */
		{ 0x100000, 64 * Q, 3 * Q, 8 },      /* not a power of two */
		{ 0x100000 + 512, 64 * Q, Q, 8 },    /* base not a multiple */
		{ 0x100000, 64 * Q + 512, Q, 8 },    /* size not a multiple */
		{ 0x100000, 0, Q, 8 },               /* empty */
		{ 0, (uint64_t)1 << 47, 1, 8 },      /* 2^47 quanta */
		{ 0x1000, (uint64_t)1 << 59, Q, 8 }, /* 2^47 quanta */
		{ 0, (uint64_t)1 << 60, Q, 8 },      /* 2^48 quanta */
		{ UINT64_MAX - 16 * Q + 1, 32 * Q, Q, 8 }, /* wraps */
		{ 0x100000, 64 * Q, Q, 1 },                /* too few keys */
		{ 0x100000, 64 * Q, Q, VAS_MIN_KEYS - 1 },
		{ 0x100000, 64 * Q, Q, VAS_MAX_KEYS + 1 },
		{ 0x100000, 64 * Q, Q, 100000 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vt_src src;
		vt_src_init(&src);
		struct vas *v = vt_zalloc(sizeof(*v));
		int rc = vas_create(v, bad[i].base, bad[i].size, bad[i].q,
				    &src.ns, bad[i].keys, 2);
		if (rc == VAS_OK) {
			fprintf(stderr, "  bad create %zu accepted\n", i);
			vas_destroy(v);
		}
		CHECK(rc < 0);
		CHECK(rc == VAS_EINVAL || rc == VAS_EALIGN || rc == VAS_ERANGE);
		CHECK_EQ(atomic_load(&src.live), 0);
		free(v);
	}
	/*
	 * The source fails on the k-th node that creation asks for: ENOMEM,
	 * nothing kept; for every k until creation asks for fewer.
	 */
	for (unsigned k = 1;; k++) {
		struct vt_src src;
		vt_src_init(&src);
		atomic_store(&src.fail_at, k);
		struct vas *v = vt_zalloc(sizeof(*v));
		int rc = vas_create(v, 0x100000, 64 * Q, Q, &src.ns, 8, 2);
		if (rc == VAS_OK) {
			CHECK_EQ(atomic_load(&src.failed), 0);
			CHECK(k > 2); /* the empty tree needs two nodes */
			CHECK_EQ(vas_destroy(v), VAS_OK);
			CHECK_EQ(atomic_load(&src.live), 0);
			free(v);
			break;
		}
		CHECK_EQ(rc, VAS_ENOMEM);
		if (atomic_load(&src.live) != 0)
			fprintf(stderr,
				"  create failing at node %u: %ld "
				"nodes kept\n",
				k, atomic_load(&src.live));
		CHECK_EQ(atomic_load(&src.live), 0);
		CHECK_EQ(atomic_load(&src.failed), 1);
		free(v);
	}
}

/* The vas's statistics, and the four range counts asked for. */
static void stats_are(struct env *e, struct vas_stats *st, uint64_t ranges,
		      uint64_t free_ranges, uint64_t free_bytes,
		      uint64_t largest_free)
{
	vas_stats(e->v, st);
	CHECK_EQ(st->ranges, ranges);
	CHECK_EQ(st->free_ranges, free_ranges);
	CHECK_EQ(st->free_bytes, free_bytes);
	CHECK_EQ(st->largest_free, largest_free);
}

static void test_create_initial(void)
{
	struct env *e = env_new(0x10003000, 256 * Q, Q, 4, 2);
	struct vas_stats st;
	stats_are(e, &st, 0, 1, 256 * Q, 256 * Q);
	CHECK_EQ(st.nodes, 2); /* the two empty trees */
	CHECK_EQ(st.nodes_retired, 0);
	CHECK_EQ(st.height, 1);
	CHECK_EQ(st.restarts, 0);
	CHECK_EQ(vt_rejected(&st), 0);
	CHECK_EQ(atomic_load(&e->src.live), 2 + st.nodes_free);
	EXPECT(e, F(0x10003000, 256 * Q));
	env_free(e);

	/* Every node capacity from the smallest to the largest. */
	static const uint32_t keys[] = {
		0, VAS_MIN_KEYS, 4, 7, 16, VAS_MAX_KEYS
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		e = env_new(0, 1024 * Q, Q, keys[i], 0);
		for (unsigned j = 0; j < 100; j++)
			CHECK_EQ(ok_alloc(e, Q, 0, VAS_FIRST_FIT, j + 1),
				 (uint64_t)j * Q);
		env_check(e);
		for (unsigned j = 0; j < 100; j += 2)
			CHECK_EQ(vas_free(e->c, (uint64_t)j * Q, Q), VAS_OK);
		for (unsigned j = 1; j < 100; j += 2)
			CHECK_EQ(vas_free(e->c, (uint64_t)j * Q, Q), VAS_OK);
		EXPECT(e, F(0, 1024 * Q));
		env_free(e);
	}
}

/* Quantum 1 over the largest region: 2^32 - 1 quanta ("below 2^32"). */
static void test_create_q1(void)
{
	uint64_t n = ((uint64_t)1 << 32) - 1;
	struct env *e = env_new(0, n, 1, 8, 2);
	uint64_t a = 1;
	CHECK_EQ(vas_alloc(e->c, n, 0, VAS_BEST_FIT, 7, &a), VAS_OK);
	CHECK_EQ(a, 0);
	struct vas_range r;
	CHECK_EQ(vas_lookup(e->c, n - 1, &r), VAS_OK);
	CHECK(r.start == 0 && r.size == n && r.tag == 7 && r.allocated);
	CHECK_EQ(vas_lookup(e->c, n, &r), VAS_ERANGE);
	CHECK_EQ(vas_alloc(e->c, 1, 0, VAS_FIRST_FIT, 8, &a), VAS_ENOSPC);
	CHECK_EQ(vas_free(e->c, 5, 3), VAS_OK);
	EXPECT(e, A(0, 5, 7), F(5, 3), A(8, n - 8, 7));
	CHECK_EQ(ok_alloc(e, 2, 2, VAS_FIRST_FIT, 9), 6);
	CHECK_EQ(ok_alloc(e, 1, 1, VAS_FIRST_FIT, 10), 5);
	EXPECT(e, A(0, 5, 7), A(5, 1, 10), A(6, 2, 9), A(8, n - 8, 7));
	CHECK_EQ(vas_free(e->c, 0, 5), VAS_OK);
	CHECK_EQ(vas_free(e->c, 5, 1), VAS_OK);
	CHECK_EQ(vas_free(e->c, 6, 2), VAS_OK);
	CHECK_EQ(vas_free(e->c, 8, n - 8), VAS_OK);
	EXPECT(e, F(0, n));
	env_free(e);
}

/* Ends just below 2^64: aligned addresses past it must not wrap to 0. */
static void test_create_top(void)
{
	uint64_t base = (uint64_t)0 - 64 * Q; /* 2^64 - 2^18 */
	struct env *e = env_new(base, 63 * Q, Q, 4, 2);
	uint64_t end = base + 63 * Q, a;
	BAD(e, VAS_ENOSPC,
	    vas_alloc(e->c, Q, (uint64_t)1 << 63, VAS_FIRST_FIT, 1, &a));
	BAD(e, VAS_ENOSPC,
	    vas_alloc(e->c, Q, (uint64_t)1 << 20, VAS_BEST_FIT, 1, &a));
	BAD(e, VAS_ERANGE, vas_alloc_at(e->c, end - Q, 2 * Q, 1));
	BAD(e, VAS_ERANGE, vas_alloc_at(e->c, base, (uint64_t)0 - Q, 1));
	BAD(e, VAS_ERANGE, vas_alloc_at(e->c, (uint64_t)0 - Q, Q, 1));
	BAD(e, VAS_ERANGE, vas_free(e->c, end, Q));
	CHECK_EQ(ok_alloc(e, Q, (uint64_t)1 << 17, VAS_FIRST_FIT, 2), base);
	CHECK_EQ(ok_alloc(e, Q, (uint64_t)1 << 16, VAS_FIRST_FIT, 3),
		 base + 16 * Q);
	CHECK_EQ(ok_alloc(e, 46 * Q, 0, VAS_BEST_FIT, 4), end - 46 * Q);
	EXPECT(e, A(base, Q, 2), F(base + Q, 15 * Q), A(base + 16 * Q, Q, 3),
	       A(end - 46 * Q, 46 * Q, 4));
	struct vas_range r;
	CHECK_EQ(vas_lookup(e->c, end - 1, &r), VAS_OK);
	CHECK_EQ(r.tag, 4);
	CHECK_EQ(vas_lookup(e->c, end, &r), VAS_ERANGE);
	CHECK_EQ(vas_lookup(e->c, UINT64_MAX, &r), VAS_ERANGE);
	CHECK_EQ(vas_free(e->c, end - 46 * Q, 46 * Q), VAS_OK);
	CHECK_EQ(vas_free(e->c, base, Q), VAS_OK);
	CHECK_EQ(vas_free(e->c, base + 16 * Q, Q), VAS_OK);
	EXPECT(e, F(base, 63 * Q));
	env_free(e);
}

/* Address 0 is a multiple of every alignment. */
static void test_create_zero(void)
{
	struct env *e = env_new(0, 64 * Q, Q, 3, 2);
	CHECK_EQ(ok_alloc(e, Q, (uint64_t)1 << 63, VAS_FIRST_FIT, 1), 0);
	uint64_t a;
	BAD(e, VAS_ENOSPC,
	    vas_alloc(e->c, Q, (uint64_t)1 << 63, VAS_BEST_FIT, 1, &a));
	struct vas_range r;
	CHECK_EQ(vas_lookup(e->c, 0, &r), VAS_OK);
	CHECK(r.start == 0 && r.size == Q && r.tag == 1 && r.allocated);
	CHECK_EQ(vas_free(e->c, 0, Q), VAS_OK);
	EXPECT(e, F(0, 64 * Q));
	env_free(e);
}

static bool count_fn(const struct vas_range *r, void *arg)
{
	(void)r;
	(*(unsigned *)arg)++;
	return true;
}

static void test_ctx(void)
{
	struct env *e = env_new(0x40000000, 64 * Q, Q, 4, 2);
	struct vas_ctx *z = vt_zalloc(sizeof(*z)); /* never registered */
	uint64_t a = 0;
	struct vas_range r;
	unsigned n = 0;
	CHECK_EQ(vas_alloc(z, Q, 0, VAS_FIRST_FIT, 1, &a), VAS_ENOTREG);
	CHECK_EQ(vas_alloc_at(z, 0x40000000, Q, 1), VAS_ENOTREG);
	CHECK_EQ(vas_free(z, 0x40000000, Q), VAS_ENOTREG);
	CHECK_EQ(vas_lookup(z, 0x40000000, &r), VAS_ENOTREG);
	CHECK_EQ(vas_iterate(z, 0, UINT64_MAX, count_fn, &n), VAS_ENOTREG);
	CHECK_EQ(n, 0);
	EXPECT(e, F(0x40000000, 64 * Q));

	/* A second context: both count their refusals into the figures. */
	struct vas_ctx *c2 = vt_zalloc(sizeof(*c2));
	CHECK_EQ(vas_ctx_register(e->v, c2), VAS_OK);
	CHECK_EQ(vas_alloc(c2, Q, 0, VAS_FIRST_FIT, 2, &a), VAS_OK);
	CHECK_EQ(a, 0x40000000);
	CHECK_EQ(vas_lookup(e->c, a, &r), VAS_OK);
	CHECK_EQ(r.tag, 2);
	CHECK_EQ(vas_free(c2, a + Q, Q), VAS_ENOTALLOC);
	CHECK_EQ(vas_free(e->c, a + Q, Q), VAS_ENOTALLOC);
	struct vas_stats st;
	vas_stats(e->v, &st);
	CHECK_EQ(vt_err(&st, VAS_ENOTALLOC), 2);

	/* Destroy with a context registered: refused, nothing changed. */
	CHECK_EQ(vas_destroy(e->v), VAS_EINVAL);
	EXPECT(e, A(0x40000000, Q, 2), F(0x40000000 + Q, 63 * Q));
	CHECK_EQ(vas_ctx_unregister(c2), VAS_OK);
	CHECK_EQ(vas_free(c2, a, Q), VAS_ENOTREG);
	CHECK_EQ(vas_lookup(c2, a, &r), VAS_ENOTREG);
	/* The figures still count what an unregistered context refused. */
	vas_stats(e->v, &st);
	CHECK_EQ(vt_err(&st, VAS_ENOTALLOC), 2);
	/* An unregistered context can be registered again. */
	CHECK_EQ(vas_ctx_register(e->v, c2), VAS_OK);
	CHECK_EQ(vas_free(c2, a, Q), VAS_OK);
	CHECK_EQ(vas_ctx_unregister(c2), VAS_OK);
	EXPECT(e, F(0x40000000, 64 * Q));
	env_free(e);
	free(c2);
	free(z);
}

/* ---- bad input ---- */

static bool stop_fn(const struct vas_range *r, void *arg)
{
	(void)r;
	(void)arg;
	CHECK(!"iterate called fn for an empty interval");
	return false;
}

static void test_bad_alloc(struct env *e)
{
	uint64_t a = 0xdead;
	BAD(e, VAS_EINVAL, vas_alloc(e->c, 0, 0, VAS_FIRST_FIT, 1, &a));
	BAD(e, VAS_EINVAL, vas_alloc(e->c, Q, 3, VAS_FIRST_FIT, 1, &a));
	BAD(e, VAS_EINVAL, vas_alloc(e->c, Q, 3 * Q, VAS_BEST_FIT, 1, &a));
	BAD(e, VAS_EINVAL, vas_alloc(e->c, Q, Q + Q / 2, VAS_FIRST_FIT, 1, &a));
	BAD(e, VAS_EINVAL,
	    vas_alloc(e->c, Q, UINT64_MAX, VAS_FIRST_FIT, 1, &a));
	BAD(e, VAS_EINVAL, vas_alloc(e->c, Q, 0, (enum vas_policy)2, 1, &a));
	BAD(e, VAS_EINVAL, vas_alloc(e->c, Q, 0, (enum vas_policy) - 1, 1, &a));
	BAD(e, VAS_EINVAL, vas_alloc(e->c, Q, 0, VAS_FIRST_FIT, 1, NULL));
	BAD(e, VAS_EALIGN, vas_alloc(e->c, 1, 0, VAS_FIRST_FIT, 1, &a));
	BAD(e, VAS_EALIGN, vas_alloc(e->c, Q / 2, 0, VAS_BEST_FIT, 1, &a));
	BAD(e, VAS_EALIGN, vas_alloc(e->c, Q + 1, Q, VAS_FIRST_FIT, 1, &a));
	BAD(e, VAS_ENOSPC,
	    vas_alloc(e->c, e->size + Q, 0, VAS_FIRST_FIT, 1, &a));
	BAD(e, VAS_ENOSPC, vas_alloc(e->c, e->size, 0, VAS_BEST_FIT, 1, &a));
	BAD(e, VAS_ENOSPC,
	    vas_alloc(e->c, UINT64_MAX & ~(Q - 1), 0, VAS_FIRST_FIT, 1, &a));
	BAD(e, VAS_ENOSPC,
	    vas_alloc(e->c, (uint64_t)1 << 63, 0, VAS_BEST_FIT, 1, &a));
	BAD(e, VAS_ENOSPC,
	    vas_alloc(e->c, Q, (uint64_t)1 << 62, VAS_FIRST_FIT, 1, &a));
	BAD(e, VAS_ENOSPC,
	    vas_alloc(e->c, Q, (uint64_t)1 << 63, VAS_BEST_FIT, 1, &a));
	(void)a;
}

static void test_bad_alloc_at(struct env *e)
{
	uint64_t b = e->base, end = env_end(e);
	BAD(e, VAS_EINVAL, vas_alloc_at(e->c, b + 12 * Q, 0, 1));
	BAD(e, VAS_EALIGN, vas_alloc_at(e->c, b + 12 * Q + 1, Q, 1));
	BAD(e, VAS_EALIGN, vas_alloc_at(e->c, b + 12 * Q + Q / 2, Q, 1));
	BAD(e, VAS_EALIGN, vas_alloc_at(e->c, b + 12 * Q, Q + 1, 1));
	BAD(e, VAS_EALIGN, vas_alloc_at(e->c, b + 12 * Q, Q / 2, 1));
	BAD(e, VAS_ERANGE, vas_alloc_at(e->c, b - Q, Q, 1));
	BAD(e, VAS_ERANGE, vas_alloc_at(e->c, b - Q, 2 * Q, 1));
	BAD(e, VAS_ERANGE, vas_alloc_at(e->c, 0, Q, 1));
	BAD(e, VAS_ERANGE, vas_alloc_at(e->c, end, Q, 1));
	BAD(e, VAS_ERANGE, vas_alloc_at(e->c, end - Q, 2 * Q, 1));
	BAD(e, VAS_ERANGE, vas_alloc_at(e->c, b, e->size + Q, 1));
	BAD(e, VAS_ERANGE,
	    vas_alloc_at(e->c, b + 12 * Q, (uint64_t)0 - Q, 1)); /* wraps */
	BAD(e, VAS_ERANGE, vas_alloc_at(e->c, UINT64_MAX & ~(Q - 1), Q, 1));
	/* Allocated: [b + 4Q, b + 8Q) tag 0x11, [b + 8Q, b + 10Q) 0x22. */
	BAD(e, VAS_EBUSY, vas_alloc_at(e->c, b + 4 * Q, 4 * Q, 1));
	BAD(e, VAS_EBUSY, vas_alloc_at(e->c, b + 5 * Q, Q, 1));
	BAD(e, VAS_EBUSY, vas_alloc_at(e->c, b + 2 * Q, 4 * Q, 1));
	BAD(e, VAS_EBUSY, vas_alloc_at(e->c, b + 3 * Q, 2 * Q, 1));
	BAD(e, VAS_EBUSY, vas_alloc_at(e->c, b + 7 * Q, 2 * Q, 1));
	BAD(e, VAS_EBUSY, vas_alloc_at(e->c, b + 9 * Q, 2 * Q, 1));
	BAD(e, VAS_EBUSY, vas_alloc_at(e->c, b, e->size, 1));
}

static void test_bad_free(struct env *e)
{
	uint64_t b = e->base, end = env_end(e);
	BAD(e, VAS_EINVAL, vas_free(e->c, b + 4 * Q, 0));
	BAD(e, VAS_EALIGN, vas_free(e->c, b + 4 * Q + 1, Q));
	BAD(e, VAS_EALIGN, vas_free(e->c, b + 4 * Q, Q - 1));
	BAD(e, VAS_EALIGN, vas_free(e->c, b + 4 * Q, 4 * Q + 8));
	BAD(e, VAS_ERANGE, vas_free(e->c, b - Q, Q));
	BAD(e, VAS_ERANGE, vas_free(e->c, b - Q, 6 * Q));
	BAD(e, VAS_ERANGE, vas_free(e->c, end, Q));
	BAD(e, VAS_ERANGE, vas_free(e->c, end - Q, 2 * Q));
	BAD(e, VAS_ERANGE, vas_free(e->c, b + 4 * Q, (uint64_t)0 - Q));
	BAD(e, VAS_ERANGE, vas_free(e->c, UINT64_MAX & ~(Q - 1), Q));
	BAD(e, VAS_ENOTALLOC, vas_free(e->c, b, Q));             /* free */
	BAD(e, VAS_ENOTALLOC, vas_free(e->c, b + 3 * Q, 2 * Q)); /* partly */
	BAD(e, VAS_ENOTALLOC, vas_free(e->c, b + 7 * Q, 2 * Q)); /* 2 ranges */
	BAD(e, VAS_ENOTALLOC, vas_free(e->c, b + 4 * Q, 6 * Q)); /* 2 whole */
	BAD(e, VAS_ENOTALLOC, vas_free(e->c, b + 9 * Q, 2 * Q)); /* past end */
	BAD(e, VAS_ENOTALLOC, vas_free(e->c, b, e->size));
	BAD(e, VAS_ENOTALLOC, vas_free(e->c, b + 12 * Q, Q));
}

static void test_bad_readers(struct env *e)
{
	uint64_t b = e->base, end = env_end(e);
	struct vas_range r;
	EXPECT_REFUSED(e, VAS_ERANGE, false, vas_lookup(e->c, b - 1, &r));
	EXPECT_REFUSED(e, VAS_ERANGE, false, vas_lookup(e->c, end, &r));
	EXPECT_REFUSED(e, VAS_ERANGE, false, vas_lookup(e->c, 0, &r));
	EXPECT_REFUSED(e, VAS_ERANGE, false, vas_lookup(e->c, UINT64_MAX, &r));
	EXPECT_REFUSED(e, VAS_ENOENT, false, vas_lookup(e->c, b, &r));
	EXPECT_REFUSED(e, VAS_ENOENT, false,
		       vas_lookup(e->c, b + 4 * Q - 1, &r));
	EXPECT_REFUSED(e, VAS_ENOENT, false, vas_lookup(e->c, end - 1, &r));
	/* vas_lookup_n: bad arguments write nothing. */
	uint64_t a[3] = { b - 1, b + 4 * Q, b };
	struct vas_range rs[3] = { { .start = 7 },
				   { .start = 7 },
				   { .start = 7 } };
	int rc[3] = { 99, 99, 99 };
	EXPECT_REFUSED(e, VAS_EINVAL, false,
		       vas_lookup_n(e->c, NULL, 1, rs, rc));
	EXPECT_REFUSED(e, VAS_EINVAL, false,
		       vas_lookup_n(e->c, a, 1, NULL, rc));
	EXPECT_REFUSED(e, VAS_EINVAL, false,
		       vas_lookup_n(e->c, a, 1, rs, NULL));
	EXPECT_REFUSED(e, VAS_EINVAL, false,
		       vas_lookup_n(e->c, a, (size_t)INT32_MAX + 1, rs, rc));
	for (int i = 0; i < 3; i++)
		CHECK(rc[i] == 99 && rs[i].start == 7);
	EXPECT_REFUSED(e, 0, false, vas_lookup_n(e->c, NULL, 0, NULL, NULL));
	/* One of each answer: ERANGE, found, ENOENT; out[i] only if found. */
	EXPECT_REFUSED(e, 1, false, vas_lookup_n(e->c, a, 3, rs, rc));
	CHECK(rc[0] == VAS_ERANGE && rs[0].start == 7);
	CHECK(rc[1] == VAS_OK && rs[1].start == b + 4 * Q &&
	      rs[1].size == 4 * Q && rs[1].tag == 0x11 && rs[1].allocated);
	CHECK(rc[2] == VAS_ENOENT && rs[2].start == 7);
	EXPECT_REFUSED(e, VAS_OK, false,
		       vas_iterate(e->c, b + Q, b + Q, stop_fn, NULL));
	EXPECT_REFUSED(e, VAS_OK, false,
		       vas_iterate(e->c, end, b, stop_fn, NULL));
	EXPECT_REFUSED(e, VAS_OK, false,
		       vas_iterate(e->c, UINT64_MAX, 0, stop_fn, NULL));
}

static void test_bad_input(void)
{
	struct env *e = env_new(0x7000000000, 32 * Q, Q, 3, 2);
	uint64_t b = e->base;
	CHECK_EQ(vas_alloc_at(e->c, b + 4 * Q, 4 * Q, 0x11), VAS_OK);
	CHECK_EQ(vas_alloc_at(e->c, b + 8 * Q, 2 * Q, 0x22), VAS_OK);
	EXPECT(e, F(b, 4 * Q), A(b + 4 * Q, 4 * Q, 0x11),
	       A(b + 8 * Q, 2 * Q, 0x22), F(b + 10 * Q, 22 * Q));
	test_bad_alloc(e);
	test_bad_alloc_at(e);
	test_bad_free(e);
	test_bad_readers(e);
	struct vas_stats st;
	vas_stats(e->v, &st);
	CHECK_EQ(st.rejected[0], 0);
	/* No room and a busy range are refusals, not bad input. */
	CHECK(vt_err_split_ok(&st));
	CHECK_EQ(st.refused[-VAS_ENOSPC], 6);
	CHECK_EQ(st.refused[-VAS_EBUSY], 7);
	CHECK_EQ(st.rejected[-VAS_ENOTALLOC], 7);
	CHECK_EQ(vt_err(&st, VAS_EINVAL), 8 + 1 + 1);
	CHECK_EQ(vt_err(&st, VAS_EALIGN), 3 + 4 + 3);
	CHECK_EQ(vt_err(&st, VAS_ENOSPC), 6);
	CHECK_EQ(vt_err(&st, VAS_ERANGE), 8 + 6);
	CHECK_EQ(vt_err(&st, VAS_EBUSY), 7);
	CHECK_EQ(vt_err(&st, VAS_ENOTALLOC), 7);
	CHECK_EQ(vt_err(&st, VAS_ENOENT), 0);
	CHECK_EQ(vt_err(&st, VAS_ENOMEM), 0);
	EXPECT(e, F(b, 4 * Q), A(b + 4 * Q, 4 * Q, 0x11),
	       A(b + 8 * Q, 2 * Q, 0x22), F(b + 10 * Q, 22 * Q));
	/* fn NULL: refused (whether readers count refusals: unspecified). */
	CHECK_EQ(vas_iterate(e->c, b, env_end(e), NULL, NULL), VAS_EINVAL);
	CHECK_EQ(vas_free(e->c, b + 4 * Q, 4 * Q), VAS_OK);
	CHECK_EQ(vas_free(e->c, b + 8 * Q, 2 * Q), VAS_OK);
	EXPECT(e, F(b, 32 * Q));
	env_free(e);
}

/* ---- frees: head, tail, middle, whole; coalescing ---- */

static void expect_lookup(struct env *e, uint64_t addr, uint64_t start,
			  uint64_t size, uintptr_t tag, int line)
{
	struct vas_range r = { 0 };
	int rc = vas_lookup(e->c, addr, &r);
	bool ok = rc == VAS_OK && r.start == start && r.size == size &&
		  r.tag == tag && r.allocated;
	if (!ok) {
		fprintf(stderr, "  lookup %#" PRIx64 " at line %d: %d\n", addr,
			line, rc);
		vt_range_print("got", &r);
	}
	CHECK(ok);
}
#define LOOKUP(e, addr, start, size, tag)                                      \
	expect_lookup(e, addr, start, size, tag, __LINE__)

static void test_free_parts(void)
{
	struct env *e = env_new(0x200000, 32 * Q, Q, 3, 2);
	uint64_t b = e->base;
	uintptr_t t = (uintptr_t)0xfeedface12345678ull;
	CHECK_EQ(vas_alloc_at(e->c, b + 8 * Q, 8 * Q, t), VAS_OK);
	EXPECT(e, F(b, 8 * Q), A(b + 8 * Q, 8 * Q, t), F(b + 16 * Q, 16 * Q));
	/* Head: coalesces with the free range before it. */
	CHECK_EQ(vas_free(e->c, b + 8 * Q, 2 * Q), VAS_OK);
	EXPECT(e, F(b, 10 * Q), A(b + 10 * Q, 6 * Q, t), F(b + 16 * Q, 16 * Q));
	/* Tail: with the one after it. */
	CHECK_EQ(vas_free(e->c, b + 14 * Q, 2 * Q), VAS_OK);
	EXPECT(e, F(b, 10 * Q), A(b + 10 * Q, 4 * Q, t), F(b + 14 * Q, 18 * Q));
	/* Middle: two allocated ranges with the tag, one free between. */
	CHECK_EQ(vas_free(e->c, b + 11 * Q, 2 * Q), VAS_OK);
	EXPECT(e, F(b, 10 * Q), A(b + 10 * Q, Q, t), F(b + 11 * Q, 2 * Q),
	       A(b + 13 * Q, Q, t), F(b + 14 * Q, 18 * Q));
	LOOKUP(e, b + 10 * Q, b + 10 * Q, Q, t);
	LOOKUP(e, b + 11 * Q - 1, b + 10 * Q, Q, t);
	LOOKUP(e, b + 13 * Q + 77, b + 13 * Q, Q, t);
	struct vas_range r;
	CHECK_EQ(vas_lookup(e->c, b + 12 * Q, &r), VAS_ENOENT);
	/* The two pieces are separate ranges: a free across both fails. */
	BAD(e, VAS_ENOTALLOC, vas_free(e->c, b + 10 * Q, 4 * Q));
	/* Whole: coalesces on both sides. */
	CHECK_EQ(vas_free(e->c, b + 10 * Q, Q), VAS_OK);
	EXPECT(e, F(b, 13 * Q), A(b + 13 * Q, Q, t), F(b + 14 * Q, 18 * Q));
	CHECK_EQ(vas_free(e->c, b + 13 * Q, Q), VAS_OK);
	EXPECT(e, F(b, 32 * Q));

	/* Adjacent allocations never merge, even with one tag. */
	CHECK_EQ(vas_alloc_at(e->c, b, 2 * Q, 5), VAS_OK);
	CHECK_EQ(vas_alloc_at(e->c, b + 2 * Q, 2 * Q, 5), VAS_OK);
	CHECK_EQ(vas_alloc_at(e->c, b + 4 * Q, 2 * Q, 6), VAS_OK);
	EXPECT(e, A(b, 2 * Q, 5), A(b + 2 * Q, 2 * Q, 5),
	       A(b + 4 * Q, 2 * Q, 6), F(b + 6 * Q, 26 * Q));
	BAD(e, VAS_ENOTALLOC, vas_free(e->c, b, 4 * Q));
	/* At the region's start: no left neighbour; right one allocated. */
	CHECK_EQ(vas_free(e->c, b, 2 * Q), VAS_OK);
	EXPECT(e, F(b, 2 * Q), A(b + 2 * Q, 2 * Q, 5), A(b + 4 * Q, 2 * Q, 6),
	       F(b + 6 * Q, 26 * Q));
	/* Right neighbour free only. */
	CHECK_EQ(vas_free(e->c, b + 4 * Q, 2 * Q), VAS_OK);
	EXPECT(e, F(b, 2 * Q), A(b + 2 * Q, 2 * Q, 5), F(b + 4 * Q, 28 * Q));
	/* At the region's end: no right neighbour; left one allocated. */
	CHECK_EQ(vas_alloc_at(e->c, b + 30 * Q, 2 * Q, 7), VAS_OK);
	CHECK_EQ(vas_alloc_at(e->c, b + 28 * Q, 2 * Q, 8), VAS_OK);
	CHECK_EQ(vas_free(e->c, b + 30 * Q, 2 * Q), VAS_OK);
	EXPECT(e, F(b, 2 * Q), A(b + 2 * Q, 2 * Q, 5), F(b + 4 * Q, 24 * Q),
	       A(b + 28 * Q, 2 * Q, 8), F(b + 30 * Q, 2 * Q));
	/* Left neighbour free only (a head). */
	CHECK_EQ(vas_free(e->c, b + 28 * Q, Q), VAS_OK);
	EXPECT(e, F(b, 2 * Q), A(b + 2 * Q, 2 * Q, 5), F(b + 4 * Q, 25 * Q),
	       A(b + 29 * Q, Q, 8), F(b + 30 * Q, 2 * Q));
	CHECK_EQ(vas_free(e->c, b + 29 * Q, Q), VAS_OK);
	EXPECT(e, F(b, 2 * Q), A(b + 2 * Q, 2 * Q, 5), F(b + 4 * Q, 28 * Q));
	CHECK_EQ(vas_free(e->c, b + 2 * Q, 2 * Q), VAS_OK);
	EXPECT(e, F(b, 32 * Q));

	/* The whole region as one allocation, split by frees. */
	CHECK_EQ(ok_alloc(e, 32 * Q, 0, VAS_BEST_FIT, 9), b);
	EXPECT(e, A(b, 32 * Q, 9));
	CHECK_EQ(vas_free(e->c, b + 31 * Q, Q), VAS_OK);
	CHECK_EQ(vas_free(e->c, b, Q), VAS_OK);
	EXPECT(e, F(b, Q), A(b + Q, 30 * Q, 9), F(b + 31 * Q, Q));
	CHECK_EQ(vas_free(e->c, b + Q, 30 * Q), VAS_OK);
	EXPECT(e, F(b, 32 * Q));
	env_free(e);
}

/* ---- placement ---- */

/* Quanta numbers of a region whose base is 3 quanta past 16Q. */
#define PQ(n) (((uint64_t)0x10010 + (n)) * Q)

/*
 * Allocate the whole region, then free windows (start, length in quanta
 * from P = 0x10010000, a multiple of 16Q):
 *   W1 [P+1, P+5)   4: size 2Q aligned 4Q does not fit (P+4 + 2 > P+5)
 *   W2 [P+17, P+22) 5: fits it at P+20, exactly
 *   W3 [P+32, P+40) 8: at P+32 (also aligned to 16Q)
 *   W4 [P+48, P+51) 3: at P+48 (16Q too)
 *   W5 [P+66, P+68) 2: not aligned to 4Q: no fit
 *   W6 [P+80, P+83) 3: at P+80, ties with W4 (16Q too)
 */
static const uint64_t win[6][2] = { { 1, 4 },  { 17, 5 }, { 32, 8 },
				    { 48, 3 }, { 66, 2 }, { 80, 3 } };

static void placement_layout(struct env *e)
{
	/*
	 * Reads the statistics as the test above does; the counts are this
	 * scenario's.
	 */
	CHECK_EQ(vas_alloc_at(e->c, e->base, e->size, 0x77), VAS_OK);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(vas_free(e->c, PQ(win[i][0]), win[i][1] * Q), VAS_OK);
	struct vas_stats st;
	stats_are(e, &st, 7, 6, 25 * Q, 8 * Q);
	env_check(e);
}

/* Allocate, expect addr, look it up, free it again. */
static void place(struct env *e, uint64_t size, uint64_t align,
		  enum vas_policy p, uint64_t want, int line)
{
	uint64_t a = 0;
	int rc = vas_alloc(e->c, size, align, p, 0x99, &a);
	if (rc != VAS_OK || a != want)
		fprintf(stderr,
			"  line %d: %s size %#" PRIx64 " align %#" PRIx64
			": %d at %#" PRIx64 ", expected %#" PRIx64 "\n",
			line, p == VAS_BEST_FIT ? "best" : "first", size, align,
			rc, a, want);
	CHECK(rc == VAS_OK && a == want);
	if (rc != VAS_OK)
		return;
	expect_lookup(e, a + size - 1, a, size, 0x99, line);
	CHECK_EQ(vas_free(e->c, a, size), VAS_OK);
}
#define PLACE(e, size, align, p, want) place(e, size, align, p, want, __LINE__)

static void test_placement(void)
{
	struct env *e = env_new(0x10003000, 256 * Q, Q, 3, 2);
	/* A fresh region: the first multiple of the alignment in it. */
	PLACE(e, Q, 16 * Q, VAS_FIRST_FIT, PQ(0));
	PLACE(e, Q, 16 * Q, VAS_BEST_FIT, PQ(0));
	PLACE(e, Q, 0, VAS_FIRST_FIT, e->base);
	PLACE(e, Q, 1, VAS_BEST_FIT, e->base); /* below q: q */
	PLACE(e, Q, Q / 2, VAS_FIRST_FIT, e->base);
	PLACE(e, 3 * Q, 2 * Q, VAS_FIRST_FIT, e->base + Q);
	PLACE(e, Q, (uint64_t)1 << 20, VAS_BEST_FIT, 0x10100000);
	EXPECT(e, F(e->base, 256 * Q));

	/* P is 16Q-aligned, P + 16 and P + 48 are 32Q-aligned, P + 48 64Q. */
	placement_layout(e);
	struct vt_snap before = { 0 }, after = { 0 };
	CHECK_EQ(vt_snap_take(e->c, e->base, env_end(e), &before), VAS_OK);
	PLACE(e, 2 * Q, 4 * Q, VAS_FIRST_FIT, PQ(20)); /* W2 */
	PLACE(e, 2 * Q, 4 * Q, VAS_BEST_FIT, PQ(48));  /* W4, not W6 */
	PLACE(e, 2 * Q, 0, VAS_FIRST_FIT, PQ(1));      /* W1 */
	PLACE(e, 2 * Q, 0, VAS_BEST_FIT, PQ(66));      /* W5 */
	PLACE(e, 2 * Q, Q, VAS_BEST_FIT, PQ(66));
	PLACE(e, 4 * Q, 0, VAS_BEST_FIT, PQ(1));       /* W1 */
	PLACE(e, 4 * Q, 4 * Q, VAS_FIRST_FIT, PQ(32)); /* W3 */
	PLACE(e, 4 * Q, 4 * Q, VAS_BEST_FIT, PQ(32));
	PLACE(e, 3 * Q, 0, VAS_BEST_FIT, PQ(48)); /* W4 */
	PLACE(e, 3 * Q, 0, VAS_FIRST_FIT, PQ(1));
	PLACE(e, 5 * Q, 0, VAS_BEST_FIT, PQ(17)); /* W2 */
	PLACE(e, 5 * Q, 0, VAS_FIRST_FIT, PQ(17));
	PLACE(e, 6 * Q, 0, VAS_FIRST_FIT, PQ(32)); /* W3 */
	PLACE(e, 6 * Q, 0, VAS_BEST_FIT, PQ(32));
	PLACE(e, 2 * Q, 16 * Q, VAS_FIRST_FIT, PQ(32)); /* W3 */
	PLACE(e, 2 * Q, 16 * Q, VAS_BEST_FIT, PQ(48));  /* W4 */
	PLACE(e, 3 * Q, 16 * Q, VAS_BEST_FIT, PQ(48));
	PLACE(e, 2 * Q, 32 * Q, VAS_FIRST_FIT, PQ(48)); /* W4: not W3 */
	PLACE(e, 3 * Q, 32 * Q, VAS_BEST_FIT, PQ(48));  /* W4 ties W6 */
	PLACE(e, 8 * Q, 8 * Q, VAS_FIRST_FIT, PQ(32));
	PLACE(e, Q, 64 * Q, VAS_BEST_FIT, PQ(48)); /* W4 only */
	uint64_t a;
	BAD(e, VAS_ENOSPC, vas_alloc(e->c, 9 * Q, 0, VAS_FIRST_FIT, 1, &a));
	BAD(e, VAS_ENOSPC, vas_alloc(e->c, 9 * Q, 0, VAS_BEST_FIT, 1, &a));
	BAD(e, VAS_ENOSPC,
	    vas_alloc(e->c, 2 * Q, 128 * Q, VAS_BEST_FIT, 1, &a));
	BAD(e, VAS_ENOSPC,
	    vas_alloc(e->c, 6 * Q, 32 * Q, VAS_FIRST_FIT, 1,
		      &a)); /* W3 has 8Q, not 32Q-aligned */
	CHECK_EQ(vt_snap_take(e->c, e->base, env_end(e), &after), VAS_OK);
	CHECK(vt_list_eq(after.r, after.n, before.r, before.n));
	vt_snap_free(&before);
	vt_snap_free(&after);
	env_free(e);
}

/* The chosen range is then split: the rest stays free around it. */
static void test_placement_split(void)
{
	struct env *e = env_new(0x10003000, 256 * Q, Q, 4, 2);
	placement_layout(e);
	CHECK_EQ(ok_alloc(e, 2 * Q, 4 * Q, VAS_FIRST_FIT, 0x31), PQ(20));
	CHECK_EQ(ok_alloc(e, Q, 4 * Q, VAS_BEST_FIT, 0x32), PQ(48));
	CHECK_EQ(ok_alloc(e, Q, 0, VAS_BEST_FIT, 0x33), PQ(49)); /* ties */
	uint64_t base = e->base;
	EXPECT(e, A(base, PQ(1) - base, 0x77), F(PQ(1), 4 * Q),
	       A(PQ(5), 12 * Q, 0x77), F(PQ(17), 3 * Q), A(PQ(20), 2 * Q, 0x31),
	       A(PQ(22), 10 * Q, 0x77), F(PQ(32), 8 * Q),
	       A(PQ(40), 8 * Q, 0x77), A(PQ(48), Q, 0x32), A(PQ(49), Q, 0x33),
	       F(PQ(50), Q), A(PQ(51), 15 * Q, 0x77), F(PQ(66), 2 * Q),
	       A(PQ(68), 12 * Q, 0x77), F(PQ(80), 3 * Q),
	       A(PQ(83), base + 256 * Q - PQ(83), 0x77));
	env_free(e);
}

/* ---- lookups, iteration, figures ---- */

static void test_lookup(void)
{
	struct env *e = env_new(0x300000, 32 * Q, Q, 3, 2);
	uint64_t b = e->base, end = env_end(e);
	CHECK_EQ(vas_alloc_at(e->c, b, 2 * Q, 1), VAS_OK);
	CHECK_EQ(vas_alloc_at(e->c, b + 5 * Q, 3 * Q, 2), VAS_OK);
	CHECK_EQ(vas_alloc_at(e->c, end - Q, Q, 3), VAS_OK);
	LOOKUP(e, b, b, 2 * Q, 1);
	LOOKUP(e, b + 2 * Q - 1, b, 2 * Q, 1);
	LOOKUP(e, b + 5 * Q, b + 5 * Q, 3 * Q, 2);
	LOOKUP(e, b + 6 * Q + 123, b + 5 * Q, 3 * Q, 2);
	LOOKUP(e, b + 8 * Q - 1, b + 5 * Q, 3 * Q, 2);
	LOOKUP(e, end - Q, end - Q, Q, 3);
	LOOKUP(e, end - 1, end - Q, Q, 3);
	struct vas_range r;
	CHECK_EQ(vas_lookup(e->c, b + 2 * Q, &r), VAS_ENOENT);
	CHECK_EQ(vas_lookup(e->c, b + 5 * Q - 1, &r), VAS_ENOENT);
	CHECK_EQ(vas_lookup(e->c, b + 8 * Q, &r), VAS_ENOENT);
	CHECK_EQ(vas_lookup(e->c, end - Q - 1, &r), VAS_ENOENT);
	CHECK_EQ(vas_lookup(e->c, b - 1, &r), VAS_ERANGE);
	CHECK_EQ(vas_lookup(e->c, end, &r), VAS_ERANGE);
	CHECK_EQ(vas_lookup(e->c, 0, &r), VAS_ERANGE);
	struct vas_stats st;
	vas_stats(e->v, &st);
	CHECK_EQ(vt_rejected(&st), 0); /* lookups are not counted */
	env_free(e);
}

/*
 * A collector for vas_iterate() like fuzz_vas.c's fv_itr: the fuzzer and the
 * tests are separate programs with their own helpers.
 */
struct itr {
	struct vas_range r[16];
	unsigned n, stop_after;
};

static bool itr_fn(const struct vas_range *r, void *arg)
{
	struct itr *it = arg;
	if (it->n < 16)
		it->r[it->n] = *r;
	it->n++;
	return it->stop_after == 0 || it->n < it->stop_after;
}

static void expect_iter(struct env *e, uint64_t a, uint64_t b,
			unsigned stop_after, int want_rc,
			const struct vas_range *want, unsigned n, int line)
{
	struct itr it = { .stop_after = stop_after };
	int rc = vas_iterate(e->c, a, b, itr_fn, &it);
	bool ok = rc == want_rc && it.n == n && vt_list_eq(it.r, it.n, want, n);
	if (!ok)
		fprintf(stderr,
			"  iterate [%#" PRIx64 ", %#" PRIx64
			") at line %d: rc %d, %u ranges\n",
			a, b, line, rc, it.n);
	CHECK(ok);
}
#define ITER(e, a, b, stop, ...)                                               \
	do {                                                                   \
		const struct vas_range w_[] = { __VA_ARGS__ };                 \
		expect_iter(e, a, b, stop, VAS_OK, w_,                         \
			    sizeof(w_) / sizeof(w_[0]), __LINE__);             \
	} while (0)

static void test_iterate(void)
{
	struct env *e = env_new(0x500000, 32 * Q, Q, 3, 2);
	uint64_t b = e->base, end = env_end(e);
	CHECK_EQ(vas_alloc_at(e->c, b + 4 * Q, 4 * Q, 1), VAS_OK);
	CHECK_EQ(vas_alloc_at(e->c, b + 8 * Q, 2 * Q, 2), VAS_OK);
	CHECK_EQ(vas_alloc_at(e->c, b + 20 * Q, Q, 3), VAS_OK);
	struct vas_range all[] = { F(b, 4 * Q),
				   A(b + 4 * Q, 4 * Q, 1),
				   A(b + 8 * Q, 2 * Q, 2),
				   F(b + 10 * Q, 10 * Q),
				   A(b + 20 * Q, Q, 3),
				   F(b + 21 * Q, 11 * Q) };
	expect_iter(e, b, end, 0, VAS_OK, all, 6, __LINE__);
	/* Bounds anywhere: the whole ranges that overlap are reported. */
	ITER(e, b + 5 * Q, b + 9 * Q, 0, all[1], all[2]);
	ITER(e, b + 4 * Q, b + 8 * Q, 0, all[1]);
	ITER(e, b + 4 * Q - 1, b + 4 * Q + 1, 0, all[0], all[1]);
	ITER(e, b + 8 * Q - 1, b + 8 * Q, 0, all[1]);
	ITER(e, b + 8 * Q, b + 8 * Q + 1, 0, all[2]);
	ITER(e, b + 12 * Q + 5, b + 12 * Q + 6, 0, all[3]);
	ITER(e, end - 1, end, 0, all[5]);
	ITER(e, b, b + 1, 0, all[0]);
	ITER(e, b + 9 * Q, b + 21 * Q, 0, all[2], all[3], all[4]);
	/* Early stop: fn returning false ends the walk at once. */
	ITER(e, b, end, 1, all[0]);
	ITER(e, b, end, 3, all[0], all[1], all[2]);
	ITER(e, b + 8 * Q, end, 2, all[2], all[3]);
	ITER(e, b, end, 6, all[0], all[1], all[2], all[3], all[4], all[5]);
	/* Bounds past the region: what overlaps it. */
	expect_iter(e, 0, UINT64_MAX, 0, VAS_OK, all, 6, __LINE__);
	expect_iter(e, b - Q, b + 5 * Q, 0, VAS_OK, all, 2, __LINE__);
	ITER(e, end - 1, UINT64_MAX, 0, all[5]);
	struct itr it = { 0 };
	int rc = vas_iterate(e->c, end, UINT64_MAX, itr_fn, &it);
	CHECK(rc == VAS_OK || rc == VAS_ERANGE);
	CHECK_EQ(it.n, 0);
	rc = vas_iterate(e->c, 0, b, itr_fn, &it);
	CHECK(rc == VAS_OK || rc == VAS_ERANGE);
	CHECK_EQ(it.n, 0);
	env_free(e);
}

/*
 * A writer between two steps of an iteration (here: called from the
 * callback, on a second context, which the synchronization table allows:
 * writers run "with anything"): whatever changes, every range reported
 * overlaps [a, b), in increasing address order, and a range that stays
 * for the whole call is reported.
 */
struct itw {
	struct env *e;
	struct vas_ctx *w;
	uint64_t a, b, prev;
	unsigned n;
	bool seen_stable;
	uint64_t stable;
	int step; /* what the writer does at the first call */
};

static bool itw_fn(const struct vas_range *r, void *arg)
{
	struct itw *it = arg;
	uint64_t b = it->e->base;
	bool ok = r->start < it->b && r->start + r->size > it->a &&
		  (it->n == 0 || r->start > it->prev);
	if (!ok) {
		fprintf(stderr,
			"  iterate [%#" PRIx64 ", %#" PRIx64
			") with a writer (%d), call %u:\n",
			it->a, it->b, it->step, it->n + 1);
		vt_range_print("reported", r);
	}
	CHECK(ok);
	it->seen_stable |= r->start == it->stable;
	it->prev = r->start;
	if (it->n++ == 0) {
		if (it->step == 0) /* carve inside the range just reported */
			CHECK_EQ(vas_alloc_at(it->w, b + 2 * Q, Q, 9), VAS_OK);
		else if (it->step == 1) /* free ahead of the walk */
			CHECK_EQ(vas_free(it->w, b + 20 * Q, 2 * Q), VAS_OK);
		else /* allocate ahead of the walk */
			CHECK_EQ(vas_alloc_at(it->w, b + 24 * Q, Q, 10),
				 VAS_OK);
	}
	return it->n < 64;
}

static void test_iterate_writer(void)
{
	for (int step = 0; step < 3; step++) {
		struct env *e = env_new(0x700000, 64 * Q, Q, 3, 2);
		struct vas_ctx *w = vt_zalloc(sizeof(*w));
		uint64_t b = e->base;
		CHECK_EQ(vas_ctx_register(e->v, w), VAS_OK);
		CHECK_EQ(vas_alloc_at(e->c, b + 16 * Q, 2 * Q, 1), VAS_OK);
		CHECK_EQ(vas_alloc_at(e->c, b + 20 * Q, 2 * Q, 2), VAS_OK);
		CHECK_EQ(vas_alloc_at(e->c, b + 30 * Q, 2 * Q, 3), VAS_OK);
		struct itw it = { .e = e,
				  .w = w,
				  .step = step,
				  .a = b + 8 * Q,
				  .b = b + 31 * Q,
				  .stable = b + 30 * Q };
		if (step == 0)
			it.b = b + 8 * Q + 1; /* only the first free range */
		CHECK_EQ(vas_iterate(e->c, it.a, it.b, itw_fn, &it), VAS_OK);
		CHECK(it.n >= 1);
		if (step > 0)
			CHECK(it.seen_stable);
		CHECK_EQ(vas_ctx_unregister(w), VAS_OK);
		env_free(e);
		free(w); /* the vas lists its contexts until destroyed */
	}
}

static void test_stats(void)
{
	struct env *e = env_new(0x600000, 64 * Q, Q, 3, 2);
	uint64_t b = e->base;
	CHECK_EQ(vas_alloc_at(e->c, b + 2 * Q, Q, 1), VAS_OK);
	CHECK_EQ(vas_alloc_at(e->c, b + 10 * Q, 5 * Q, 2), VAS_OK);
	CHECK_EQ(vas_alloc_at(e->c, b + 15 * Q, Q, 3), VAS_OK);
	CHECK_EQ(vas_alloc_at(e->c, b + 50 * Q, 14 * Q, 4), VAS_OK);
	struct vas_stats st;
	stats_are(e, &st, 4, 3, (2 + 7 + 34) * Q, 34 * Q);
	CHECK(st.height >= 1 && st.height <= VAS_MAX_HEIGHT);
	CHECK(st.nodes >= 2);
	CHECK(atomic_load(&e->src.live) >= (long)(st.nodes + st.nodes_free));
	CHECK_EQ(vas_free(e->c, b + 50 * Q, 14 * Q), VAS_OK);
	stats_are(e, &st, 3, 3, (2 + 7 + 48) * Q, 48 * Q);
	CHECK_EQ(vt_rejected(&st), 0);
	env_free(e);
}

/* The source fails every node from now on: ENOMEM, nothing changed. */
static void test_enomem(void)
{
	struct env *e = env_new(0x800000, 4096 * Q, Q, 3, 0);
	atomic_store(&e->src.fail_all, true);
	unsigned ok = 0, nomem = 0;
	for (unsigned i = 0; i < 200 && nomem < 20; i++) {
		struct state s;
		state_take(e, &s);
		uint64_t a;
		int rc = i % 3 ? vas_alloc(e->c, Q, 0, i % 2, i + 1, &a)
			       : vas_alloc_at(e->c, e->base + 2 * i * Q, Q,
					      i + 1);
		if (rc == VAS_ENOMEM) {
			nomem++;
			state_same(e, &s, VAS_ENOMEM, true, __LINE__);
			continue;
		}
		CHECK_EQ(rc, VAS_OK);
		ok++;
		vt_snap_free(&s.snap);
	}
	CHECK(nomem > 0);
	struct vas_stats st;
	vas_stats(e->v, &st);
	CHECK_EQ(vt_err(&st, VAS_ENOMEM), nomem);
	CHECK_EQ(st.ranges, ok);
	atomic_store(&e->src.fail_all, false);
	/* And it works again. */
	for (unsigned i = 0; i < 100; i++) {
		uint64_t a;
		CHECK_EQ(vas_alloc(e->c, Q, 0, VAS_FIRST_FIT, 1000 + i, &a),
			 VAS_OK);
	}
	env_check(e);
	env_free(e);
}

/*
 * Caching off refused by a failing source (the drain of 32 cached ranges
 * splits nodes of the size tree): VAS_ENOMEM, and caching still on, so
 * that what is still held is no broken A11 and a later off returns it.
 */
static void test_enomem_caching_off(void)
{
	struct env *e = env_new(0x800000, 4096 * Q, Q, 3, 0);
	CHECK_EQ(vas_set_caching(e->v, true), VAS_OK);
	uint64_t a[64];
	for (unsigned i = 0; i < 64; i++)
		a[i] = ok_alloc(e, Q, 0, VAS_FIRST_FIT, i + 1);
	for (unsigned i = 0; i < 64; i += 2) /* cached: leaf-local frees */
		CHECK_EQ(vas_free(e->c, a[i], Q), VAS_OK);
	struct vas_stats st;
	vas_stats(e->v, &st);
	CHECK(st.local > 0);
	unsigned long failed = atomic_load(&e->src.failed);
	atomic_store(&e->src.fail_all, true);
	CHECK_EQ(vas_set_caching(e->v, false), VAS_ENOMEM);
	CHECK(atomic_load(&e->src.failed) > failed);
	/* Relaxed: the test alone runs. */
	CHECK(lf_load_u32(&e->v->caching, LF_RELAXED) != 0);
	env_check(e); /* A10, A11 */
	atomic_store(&e->src.fail_all, false);
	CHECK_EQ(vas_set_caching(e->v, false), VAS_OK);
	env_check(e);
	for (unsigned i = 1; i < 64; i += 2)
		CHECK_EQ(vas_free(e->c, a[i], Q), VAS_OK);
	vas_stats(e->v, &st);
	CHECK_EQ(st.ranges, 0);
	CHECK_EQ(st.free_ranges, 1);
	env_free(e);
}

/*
 * An unmap over a span that holds 32 cached ranges: the drain returns
 * each to the free ranges (a size-tree insert each, splits in 3-key
 * nodes), reserving its nodes before each return, so that the call never
 * runs short of the nodes it reserved for itself.
 */
static void test_drain_span_many(void)
{
	struct env *e = env_new(0x800000, 4096 * Q, Q, 3, 0);
	CHECK_EQ(vas_set_caching(e->v, true), VAS_OK);
	uint64_t a[64], lo = UINT64_MAX, hi = 0;
	for (unsigned i = 0; i < 64; i++) {
		a[i] = ok_alloc(e, Q, 0, VAS_FIRST_FIT, i + 1);
		lo = a[i] < lo ? a[i] : lo;
		hi = a[i] + Q > hi ? a[i] + Q : hi;
	}
	for (unsigned i = 0; i < 64; i += 2) /* cached: leaf-local frees */
		CHECK_EQ(vas_free(e->c, a[i], Q), VAS_OK);
	CHECK_EQ(e->c->ncache, 32);
	uint64_t removed = 0;
	CHECK_EQ(vas_unmap(e->c, lo, hi - lo, NULL, NULL, &removed), VAS_OK);
	CHECK_EQ(removed, 32 * Q);
	CHECK_EQ(e->c->ncache, 0);
	env_check(e);
	CHECK_EQ(vas_set_caching(e->v, false), VAS_OK);
	struct vas_stats st;
	vas_stats(e->v, &st);
	CHECK_EQ(st.ranges, 0);
	CHECK_EQ(st.free_ranges, 1);
	env_free(e);
}

/*
 * A region of 256 quanta: a reservation is a sixteenth, 16 quanta, the
 * longest allocation caching serves (VAS_PC_QMAX). An allocation that
 * long takes no reservation (it would use it up and leave an empty held
 * range): it is placed as with caching off.
 */
static void test_resv_whole(void)
{
	struct env *e = env_new(0x800000, 256 * Q, Q, 3, 0);
	CHECK_EQ(e->v->resv_q, VAS_PC_QMAX);
	CHECK_EQ(vas_set_caching(e->v, true), VAS_OK);
	uint64_t a = ok_alloc(e, VAS_PC_QMAX * Q, 0, VAS_FIRST_FIT, 1);
	CHECK_EQ(a, e->base);
	CHECK_EQ(e->c->resv.len, 0);
	env_check(e);
	uint64_t b = ok_alloc(e, Q, 0, VAS_FIRST_FIT, 2); /* a reservation */
	CHECK_EQ(e->c->resv.len, VAS_PC_QMAX - 1);
	env_check(e);
	CHECK_EQ(vas_free(e->c, a, VAS_PC_QMAX * Q), VAS_OK);
	CHECK_EQ(vas_free(e->c, b, Q), VAS_OK);
	CHECK_EQ(vas_set_caching(e->v, false), VAS_OK);
	env_free(e);
}

/* ---- many ranges in small nodes ---- */

/*
 * vas_lookup_n of every quantum of [a, a + size) and a byte into each
 * (their groups of 8 cross leaves and, in a tree of height > 2, level-1
 * nodes), in several call sizes, against vas_lookup of each.
 */
static void test_lookup_n(struct env *e, uint64_t a, uint64_t size)
{
	size_t n = (size_t)(2 * size / Q);
	uint64_t *addr = calloc(n, sizeof(*addr));
	struct vas_range *r = calloc(n, sizeof(*r));
	int *rc = calloc(n, sizeof(*rc));
	CHECK_FATAL(addr != NULL && r != NULL && rc != NULL);
	for (size_t i = 0; i < n; i++)
		addr[i] = a + (uint64_t)(i / 2) * Q + (i % 2 ? Q - 1 : 0);
	static const size_t calls[] = { 1, 3, 8, 9, 17, 64 };
	for (size_t c = 0; c < sizeof(calls) / sizeof(calls[0]); c++) {
		int hits = 0, want = 0;
		for (size_t i = 0; i < n; i += calls[c]) {
			size_t k = n - i < calls[c] ? n - i : calls[c];
			int h = vas_lookup_n(e->c, &addr[i], k, &r[i], &rc[i]);
			CHECK(h >= 0);
			hits += h;
		}
		for (size_t i = 0; i < n; i++) {
			struct vas_range w = { 0 };
			int rw = vas_lookup(e->c, addr[i], &w);
			if (rc[i] != rw ||
			    (rw == VAS_OK && !vt_range_eq(&r[i], &w))) {
				fprintf(stderr,
					"  lookup_n %#" PRIx64
					" (calls of %zu): %d, lookup %d\n",
					addr[i], calls[c], rc[i], rw);
				CHECK(false);
				break;
			}
			want += rw == VAS_OK;
		}
		CHECK_EQ(hits, want);
		CHECK(want > 0 && (size_t)want < n);
	}
	free(addr);
	free(r);
	free(rc);
}

static void test_many(uint32_t keys)
{
	struct env *e = env_new(0x900000, 2048 * Q, Q, keys, 2);
	uint64_t b = e->base;
	unsigned n = 600;
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(ok_alloc(e, Q, 0, VAS_FIRST_FIT, i + 1),
			 b + (uint64_t)i * Q);
	env_check(e);
	struct vas_stats st;
	vas_stats(e->v, &st);
	CHECK_EQ(st.ranges, n);
	CHECK(st.height > 2);
	/* Every other one: n/2 free ranges of 1Q and the rest. */
	for (unsigned i = 0; i < n; i += 2)
		CHECK_EQ(vas_free(e->c, b + (uint64_t)i * Q, Q), VAS_OK);
	env_check(e);
	vas_stats(e->v, &st);
	CHECK_EQ(st.ranges, n / 2);
	CHECK_EQ(st.free_ranges, n / 2 + 1);
	for (unsigned i = 1; i < n; i += 2)
		LOOKUP(e, b + (uint64_t)i * Q + 5, b + (uint64_t)i * Q, Q,
		       i + 1);
	test_lookup_n(e, b - Q, (n + 2) * Q);
	/* Best fit: the first 1Q hole; bigger ones from the end. */
	CHECK_EQ(ok_alloc(e, Q, 0, VAS_BEST_FIT, 5000), b);
	CHECK_EQ(ok_alloc(e, 2 * Q, 0, VAS_BEST_FIT, 5001),
		 b + (uint64_t)n * Q);
	CHECK_EQ(vas_free(e->c, b, Q), VAS_OK);
	CHECK_EQ(vas_free(e->c, b + (uint64_t)n * Q, 2 * Q), VAS_OK);
	/* Back to front, the rest. */
	for (unsigned i = n - 1; i < n; i -= 2)
		CHECK_EQ(vas_free(e->c, b + (uint64_t)i * Q, Q), VAS_OK);
	EXPECT(e, F(b, 2048 * Q));
	vas_stats(e->v, &st);
	CHECK_EQ(st.height, 1);
	CHECK_EQ(st.nodes, 2);
	env_free(e);
}

/*
 * Nodes for the tall tree: pages of one anonymous mapping (no allocator
 * overhead: it takes about 180,000 nodes), counted like vt_src.
 */
struct slab {
	char *mem;
	size_t next, cap;
	void *free; /* put() nodes, linked through their first word */
	long live;
};

static void *slab_get(void *arg)
{
	struct slab *sl = arg;
	void *x = sl->free;
	if (x != NULL) {
		memcpy(&sl->free, x, sizeof(void *));
	} else {
		CHECK_FATAL(sl->next < sl->cap);
		x = sl->mem + sl->next++ * VAS_NODE_SIZE;
	}
	sl->live++;
	return x;
}

static void slab_put(void *arg, void *node)
{
	struct slab *sl = arg;
	memcpy(node, &sl->free, sizeof(void *));
	sl->free = node;
	sl->live--;
}

/*
 * Ascending single-quantum allocations: 3-key nodes split 1 | 2, so the
 * tree is about one entry per leaf and two children per inner node, and
 * VAS_MAX_HEIGHT levels hold about 2^16 ranges. The region holds 2^18
 * quanta (vas.h allows up to 2^32 - 1): past that height the vas must
 * keep working or refuse cleanly (an error, nothing changed), never stop
 * the machine. Run alone (test_vas tall): it needs about 750 MB of nodes.
 */
static void test_tall(void)
{
	uint64_t n = (uint64_t)1 << 17;
	struct slab sl = { .cap = 400000 };
	sl.mem = mmap(NULL, sl.cap * VAS_NODE_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK_FATAL(sl.mem != MAP_FAILED);
	struct vas_node_source ns = { slab_get, slab_put, &sl };
	struct env *e = calloc(1, sizeof(*e));
	CHECK_FATAL(e);
	e->v = vt_zalloc(sizeof(*e->v));
	e->c = vt_zalloc(sizeof(*e->c));
	e->base = 0;
	e->size = 2 * n * Q;
	e->q = Q;
	CHECK_FATAL(vas_create(e->v, 0, 2 * n * Q, Q, &ns, 3, 2) == VAS_OK);
	CHECK_FATAL(vas_ctx_register(e->v, e->c) == VAS_OK);
	uint64_t done = 0;
	int first_err = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t a;
		int rc = vas_alloc(e->c, Q, 0, VAS_FIRST_FIT, i + 1, &a);
		if (rc != VAS_OK) {
			first_err = rc;
			break;
		}
		CHECK_EQ(a, i * Q);
		done++;
	}
	struct vas_stats st;
	vas_stats(e->v, &st);
	printf("test_vas: %" PRIu64 " ranges in 3-key nodes: height %" PRIu64
	       ", %" PRIu64 " nodes, stopped by %d (%s)\n",
	       done, st.height, st.nodes, first_err,
	       first_err ? vas_strerror(first_err) : "-");
	CHECK_EQ(done, n);
	CHECK(st.height <= VAS_MAX_HEIGHT);
	CHECK_EQ(st.ranges, done);
	env_check(e);
	for (uint64_t i = 0; i < done; i += 997)
		LOOKUP(e, i * Q + 1, i * Q, Q, i + 1);
	for (uint64_t i = 0; i < done; i++)
		CHECK_EQ(vas_free(e->c, i * Q, Q), VAS_OK);
	EXPECT(e, F(0, 2 * n * Q));
	CHECK_EQ(vas_ctx_unregister(e->c), VAS_OK);
	CHECK_EQ(vas_destroy(e->v), VAS_OK);
	CHECK_EQ(sl.live, 0);
	munmap(sl.mem, sl.cap * VAS_NODE_SIZE);
	free(e->v);
	free(e->c);
	free(e);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "tall")) {
		test_tall();
		return check_exit("test_vas tall");
	}
	test_create_bad();
	test_create_initial();
	test_create_q1();
	test_create_top();
	test_create_zero();
	test_ctx();
	test_bad_input();
	test_free_parts();
	test_placement();
	test_placement_split();
	test_lookup();
	test_iterate();
	test_iterate_writer();
	test_stats();
	test_enomem();
	test_enomem_caching_off();
	test_drain_span_many();
	test_resv_whole();
	test_many(3);
	test_many(4);
	test_many(7);
	return check_exit("test_vas");
}
