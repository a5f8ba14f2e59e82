/*
 * verify/kmem/test_kmem.c: unit tests of kmem/ on one thread (several CPU
 * numbers): layouts and alignment, kmalloc's classes and large blocks,
 * constructors, every bad-input class (its code, counted, nothing changed),
 * the watermark and reclaim, no memory stranded in magazines (K7), a
 * failing source, and the debug red zones and poisoning (LF_DEBUG builds).
 * kmem_check() (K1-K8) after every test.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "kmem.h"
#include "kmem_i.h" /* test_free_check: the fast check, white-box */
#include "kmem_src.h"

#define NCPU 4

static struct ksrc src;
static struct kmem *k;

static void setup(size_t pages, unsigned empty_max)
{
	CHECK_FATAL(ksrc_init(&src, pages) == 0);
	k = ksrc_kmem(&src, NCPU, 32, empty_max);
	CHECK_FATAL(k != NULL);
}

/* Everything back: every object freed by the test, reclaim gives all. */
static void teardown(void)
{
	CHECK_EQ(kmem_check(k), 0);
	kmem_reclaim(k, 0, true);
	struct kmem_stats st;
	kmem_stats(k, &st);
	CHECK_EQ(st.pages, 0);
	CHECK_EQ(ksrc_held(&src), 0);
	CHECK_EQ(kmem_check(k), 0);
	free(k); /* the metadata: the instance is at its start */
	ksrc_fini(&src);
}

static void test_basic(void)
{
	setup(256, 1);
	struct kmem_cache *c;
	CHECK_EQ(kmem_cache_create(k, "t", 40, 16, NULL, NULL, NULL, &c), 0);
	void *p[500];
	for (int i = 0; i < 500; i++) {
		CHECK_EQ(kmem_cache_alloc(c, (unsigned)i % NCPU, &p[i]), 0);
		CHECK(((uintptr_t)p[i] & 15) == 0);
		CHECK(kmem_cache_of(k, p[i]) == c);
		memset(p[i], i & 0xff, 40);
	}
	for (int i = 0; i < 500; i++)
		for (int j = i + 1; j < 500; j++)
			CHECK((char *)p[i] + 40 <= (char *)p[j] ||
			      (char *)p[j] + 40 <= (char *)p[i]);
	struct kmem_cache_stats st;
	kmem_cache_stats(c, &st);
	CHECK_EQ(st.inuse, 500);
	CHECK_EQ(kmem_check(k), 0);
	for (int i = 0; i < 500; i++) {
		const unsigned char *b = p[i];
		CHECK(b[8] == (i & 0xff) && b[39] == (i & 0xff));
		CHECK_EQ(kmem_cache_free(c, (unsigned)(i + 1) % NCPU, p[i]), 0);
	}
	kmem_cache_stats(c, &st);
	CHECK_EQ(st.inuse, 0);
	CHECK_EQ(st.allocs, 500);
	CHECK_EQ(st.frees, 500);
	CHECK(st.in_mags + st.in_slabs == st.slabs * st.slab_objs);
	CHECK_EQ(kmem_check(k), 0);
	CHECK_EQ(kmem_cache_destroy(c, 0), 0);
	teardown();
}

static void test_kmalloc(void)
{
	setup(2048, 1);
	void *p[2100];
	size_t n = 0;
	for (size_t sz = 1; sz <= KMEM_KMALLOC_MAX; sz += 1 + sz / 16) {
		CHECK_EQ(kmalloc(k, 0, sz, &p[n]), 0);
		size_t u = kmem_ksize(k, p[n]);
		CHECK(u >= sz && u <= 2 * sz + 8);
		size_t al = u >= 8 ? 8 : u;
		CHECK(((uintptr_t)p[n] & (al - 1)) == 0);
		memset(p[n], 0x5a, sz);
		n++;
	}
	/* Large: whole pages from the source. */
	void *big[4];
	size_t bs[4] = { KMEM_KMALLOC_MAX + 1, 3 * KMEM_PAGE_SIZE,
			 16 * KMEM_PAGE_SIZE, 100000 };
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(kmalloc(k, 1, bs[i], &big[i]), 0);
		CHECK(((uintptr_t)big[i] & (KMEM_PAGE_SIZE - 1)) == 0);
		CHECK(kmem_ksize(k, big[i]) >= bs[i]);
		memset(big[i], 1, bs[i]);
	}
	CHECK_EQ(kmem_check(k), 0);
	struct kmem_stats ks;
	kmem_stats(k, &ks);
	CHECK_EQ(ks.large_allocs, 4);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(kfree(k, 2, big[i]), 0);
	for (size_t i = 0; i < n; i++)
		CHECK_EQ(kfree(k, (unsigned)i % NCPU, p[i]), 0);
	CHECK_EQ(kmalloc(k, 0, 0, &p[0]), KMEM_EINVAL);
	CHECK_EQ(kmalloc(k, NCPU, 8, &p[0]), KMEM_EINVAL);
	teardown();
}

static int ctor_calls, dtor_calls;
static void ctor(void *o, void *arg)
{
	CHECK(arg == &ctor_calls);
	memset(o, 0xc7, 100);
	ctor_calls++;
}
static void dtor(void *o, void *arg)
{
	(void)arg;
	const unsigned char *b = o;
	CHECK(b[0] == 0xc7 && b[99] == 0xc7); /* handed back constructed */
	dtor_calls++;
}

static void test_ctor(void)
{
	setup(256, 0);
	struct kmem_cache *c;
	CHECK_EQ(kmem_cache_create(k, "ctor", 100, 0, ctor, dtor, &ctor_calls,
				   &c),
		 0);
	void *p[300];
	for (int r = 0; r < 3; r++) {
		for (int i = 0; i < 300; i++) {
			CHECK_EQ(kmem_cache_alloc(c, (unsigned)i % NCPU, &p[i]),
				 0);
			const unsigned char *b = p[i];
			CHECK(b[0] == 0xc7 && b[99] == 0xc7);
		}
		for (int i = 0; i < 300; i++)
			CHECK_EQ(kmem_cache_free(c, (unsigned)(i + r) % NCPU,
						 p[i]),
				 0);
	}
	struct kmem_cache_stats st;
	kmem_cache_stats(c, &st);
	CHECK_EQ(ctor_calls, (int)(st.grows * st.slab_objs));
	CHECK_EQ(kmem_check(k), 0);
	CHECK_EQ(kmem_cache_destroy(c, 0), 0);
	CHECK_EQ(dtor_calls, ctor_calls); /* every constructed object */
	teardown();
}

/* Snapshot what a rejected call must leave alone, and the counters. */
struct snap {
	struct kmem_cache_stats a, b;
	struct kmem_stats k;
	size_t held;
};
static void snap_take(struct snap *s, struct kmem_cache *a,
		      struct kmem_cache *b)
{
	kmem_cache_stats(a, &s->a);
	kmem_cache_stats(b, &s->b);
	kmem_stats(k, &s->k);
	s->held = ksrc_held(&src);
}
static bool snap_same(const struct snap *x, const struct snap *y)
{
	return x->a.inuse == y->a.inuse && x->a.in_mags == y->a.in_mags &&
	       x->a.allocs == y->a.allocs && x->a.frees == y->a.frees &&
	       x->b.allocs == y->b.allocs && x->b.frees == y->b.frees &&
	       x->a.in_slabs == y->a.in_slabs && x->a.slabs == y->a.slabs &&
	       x->b.inuse == y->b.inuse && x->b.in_mags == y->b.in_mags &&
	       x->b.in_slabs == y->b.in_slabs && x->held == y->held &&
	       x->a.depot_gets == y->a.depot_gets &&
	       x->a.depot_puts == y->a.depot_puts &&
	       x->b.depot_gets == y->b.depot_gets &&
	       x->b.depot_puts == y->b.depot_puts &&
	       x->a.slab_fills == y->a.slab_fills &&
	       x->b.slab_fills == y->b.slab_fills &&
	       x->k.mags_free == y->k.mags_free;
}

/*
 * A bad free: the code, counted once in counter (a or b: that cache's
 * statistics; k: the instance's), nothing changed.
 */
#define BAD(call, want, counter)                                               \
	do {                                                                   \
		struct snap s0, s1;                                            \
		snap_take(&s0, A, B);                                          \
		int got_ = (call);                                             \
		snap_take(&s1, A, B);                                          \
		CHECK(snap_same(&s0, &s1));                                    \
		CHECK_EQ(got_, (want));                                        \
		CHECK_EQ(s1.counter.rejected_by[-(want)],                      \
			 s0.counter.rejected_by[-(want)] + 1);                 \
		CHECK_EQ(kmem_check(k), 0);                                    \
	} while (0)
#define BADK(call, want) BAD(call, want, k)

static void test_bad_input(void)
{
	setup(512, 1);
	struct kmem_cache *A, *B;
	CHECK_EQ(kmem_cache_create(k, "A", 64, 0, NULL, NULL, NULL, &A), 0);
	CHECK_EQ(kmem_cache_create(k, "B", 64, 0, NULL, NULL, NULL, &B), 0);
	void *a[200], *b;
	for (int i = 0; i < 200; i++)
		CHECK_EQ(kmem_cache_alloc(A, 0, &a[i]), 0);
	CHECK_EQ(kmem_cache_alloc(B, 0, &b), 0);
	int local;

	/* Not from any cache: outside the range, a page never handed out,
	 * the slab header. */
	BAD(kmem_cache_free(A, 0, &local), KMEM_EFOREIGN, a);
	BAD(kmem_cache_free(
		    A, 0,
		    (void *)(src.base + (src.npages - 1) * KMEM_PAGE_SIZE)),
	    KMEM_EFOREIGN, a);
	BAD(kmem_cache_free(A, 0,
			    (void *)((uintptr_t)a[0] & ~(KMEM_PAGE_SIZE - 1))),
	    KMEM_EFOREIGN, a);
	BADK(kfree(k, 0, &local), KMEM_EFOREIGN);
	/* Wrong cache. */
	BAD(kmem_cache_free(A, 1, b), KMEM_EWRONG, a);
	BAD(kmem_cache_free(B, 1, a[0]), KMEM_EWRONG, b);
	BAD(kfree(k, 1, a[0]), KMEM_EWRONG, a); /* not a kmalloc block */
	/* Interior pointers. */
	BAD(kmem_cache_free(A, 2, (char *)a[3] + 8), KMEM_EINTERIOR, a);
	BAD(kmem_cache_free(A, 2, (char *)a[3] + 63), KMEM_EINTERIOR, a);
	/* Double frees: sitting in the CPU's magazine, in another CPU's, in
	 * the depot, on the slab's free list, in a slab given back. */
	CHECK_EQ(kmem_cache_free(A, 0, a[10]), 0);
	BAD(kmem_cache_free(A, 0, a[10]), KMEM_EDOUBLE, a);
	BAD(kmem_cache_free(A, 3, a[10]), KMEM_EDOUBLE, a);
	for (int i = 11; i < 150; i++) /* fills magazines: some to the depot */
		CHECK_EQ(kmem_cache_free(A, 1, a[i]), 0);
	struct kmem_cache_stats st;
	kmem_cache_stats(A, &st);
	CHECK(st.depot_puts > 0);
	BAD(kmem_cache_free(A, 1, a[11]), KMEM_EDOUBLE, a);
	BAD(kmem_cache_free(A, 2, a[12]), KMEM_EDOUBLE, a);
	kmem_reclaim(k, 0, false); /* depot to slabs; CPU magazines kept */
	BAD(kmem_cache_free(A, 1, a[11]), KMEM_EDOUBLE, a);
	kmem_reclaim(k, 0, true); /* everything to slabs */
	BAD(kmem_cache_free(A, 0, a[10]), KMEM_EDOUBLE, a);
	BAD(kmem_cache_free(A, 0, a[99]), KMEM_EDOUBLE, a);
	for (int i = 150; i < 200; i++)
		CHECK_EQ(kmem_cache_free(A, 0, a[i]), 0);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(kmem_cache_free(A, 0, a[i]), 0);
	kmem_reclaim(k, 0, true); /* A's slabs given back */
	kmem_cache_stats(A, &st);
	CHECK_EQ(st.slabs, 0);
	BAD(kmem_cache_free(A, 0, a[50]), KMEM_EDOUBLE, a);
	/* Large blocks: interior, tail page, double. */
	void *big;
	CHECK_EQ(kmalloc(k, 0, 4 * KMEM_PAGE_SIZE, &big), 0);
	BADK(kfree(k, 0, (char *)big + 8), KMEM_EINTERIOR);
	BADK(kfree(k, 0, (char *)big + KMEM_PAGE_SIZE), KMEM_EINTERIOR);
	BAD(kmem_cache_free(A, 0, big), KMEM_EWRONG, a);
	CHECK_EQ(kfree(k, 0, big), 0);
	BADK(kfree(k, 0, big), KMEM_EDOUBLE);
	/* Destroy of a cache in use: EBUSY, nothing changed (rounds in a
	 * CPU's magazine stay there). */
	void *b2;
	CHECK_EQ(kmem_cache_alloc(B, 2, &b2), 0);
	CHECK_EQ(kmem_cache_free(B, 2, b2), 0);
	kmem_cache_stats(B, &st);
	CHECK(st.in_mags > 0);
	BAD(kmem_cache_destroy(B, 0), KMEM_EBUSY, b);
	/* EINVAL: bad CPU, NULL, bad size or alignment. */
	BAD(kmem_cache_free(B, NCPU, b), KMEM_EINVAL, b);
	void *x;
	BAD(kmem_cache_alloc(B, NCPU, &x), KMEM_EINVAL, b);
	struct kmem_cache *c;
	CHECK_EQ(kmem_cache_create(k, "x", 0, 0, NULL, NULL, NULL, &c),
		 KMEM_EINVAL);
	CHECK_EQ(kmem_cache_create(k, "x", 8, 24, NULL, NULL, NULL, &c),
		 KMEM_EINVAL);
	CHECK_EQ(kmem_cache_free(B, 0, b), 0);
	CHECK_EQ(kmem_cache_destroy(A, 0), 0);
	CHECK_EQ(kmem_cache_destroy(B, 0), 0);
	CHECK(strcmp(kmem_strerror(KMEM_EINTERIOR), "EINTERIOR") == 0);
	CHECK(strcmp(kmem_strerror(KMEM_ECORRUPT), "ECORRUPT") == 0);
	teardown();
}

/*
 * The allocation's result in registers (kmem.h: kmem_cache_get(), and
 * kmem_cache_alloc() inline over it): on success the object in *obj; on
 * every refusal and failure *obj unchanged, the code, counted as before
 * (EINVAL with a NULL obj too, through kmem_cache_alloc_out()), and
 * nothing changed.
 */
static void test_alloc_result(void)
{
	setup(64, 1);
	struct kmem_cache *A, *B;
	CHECK_EQ(kmem_cache_create(k, "A", 64, 0, NULL, NULL, NULL, &A), 0);
	CHECK_EQ(kmem_cache_create(k, "B", 3000, 0, NULL, NULL, NULL, &B), 0);
	static int markv;
	void *const mark = &markv;
	void *x = mark, *y = mark;
	/* Refused: the code, counted, nothing changed, *obj unchanged. */
	BAD(kmem_cache_alloc(A, NCPU, &x), KMEM_EINVAL, a);
	CHECK(x == mark);
	BAD(kmem_cache_alloc(A, 0, NULL), KMEM_EINVAL, a);
	BAD(kmem_cache_alloc_out(A, 0, NULL), KMEM_EINVAL, a);
	BAD(kmem_cache_alloc_out(A, NCPU, &x), KMEM_EINVAL, a);
	CHECK(x == mark);
	BAD((int)kmem_cache_get(A, NCPU).err, KMEM_EINVAL, a);
	CHECK(kmem_cache_get(A, NCPU).obj == NULL);
	CHECK_EQ(kmem_cache_alloc(NULL, 0, &x), KMEM_EINVAL);
	CHECK_EQ(kmem_cache_alloc(NULL, 0, NULL), KMEM_EINVAL);
	CHECK_EQ((int)kmem_cache_get(NULL, 0).err, KMEM_EINVAL);
	CHECK(x == mark);
	/* Failed (the source refuses): the code, *obj unchanged. */
	src.fail = -42;
	CHECK_EQ(kmem_cache_alloc(B, 0, &y), KMEM_ESOURCE);
	CHECK(y == mark);
	src.fail = 0;
	struct kmem_cache_stats st;
	kmem_cache_stats(B, &st);
	CHECK_EQ(st.failed, 1);
	CHECK_EQ(st.inuse, 0);
	/* Success, all three ways: distinct objects of A, each freed once. */
	struct kmem_got g = kmem_cache_get(A, 1);
	CHECK_EQ((int)g.err, 0);
	CHECK(g.obj != NULL);
	CHECK_EQ(kmem_cache_alloc(A, 1, &x), 0);
	CHECK_EQ(kmem_cache_alloc_out(A, 1, &y), 0);
	CHECK(x != mark && y != mark && x != y && x != g.obj && y != g.obj);
	kmem_cache_stats(A, &st);
	CHECK_EQ(st.inuse, 3);
	CHECK_EQ(kmem_cache_free(A, 1, g.obj), 0);
	CHECK_EQ(kmem_cache_free(A, 1, x), 0);
	CHECK_EQ(kmem_cache_free(A, 1, y), 0);
	CHECK_EQ(kmem_cache_free(A, 1, x), KMEM_EDOUBLE);
	kmem_cache_stats(A, &st);
	CHECK_EQ(st.inuse, 0);
	CHECK_EQ(kmem_cache_destroy(A, 0), 0);
	CHECK_EQ(kmem_cache_destroy(B, 0), 0);
	teardown();
}

/* CPU cpu's magazines in cache c as they stand (white-box). */
struct cpu_mags {
	struct kmem_mag *loaded, *prev;
	uintptr_t top;
	uint32_t prev_n;
};
static struct cpu_mags cpu_mags(struct kmem_cache *c, unsigned cpu)
{
	struct kmem_cpu *cc = &c->cpu[cpu];
	/* Relaxed, all: one thread. */
	struct cpu_mags m = { cc->loaded, cc->prev,
			      lf_load_uptr(&cc->top, LF_RELAXED),
			      lf_load_u32(&cc->prev->n, LF_RELAXED) };
	return m;
}

/*
 * A double free that finds its CPU's two magazines full: the hit sends it
 * to the slow path, which would exchange the previous one with the depot
 * for an empty one. The hit leaves the check of the bufctl word to its
 * claim's CAS; the slow path makes it first, so the refusal (EDOUBLE, also
 * for a corrupt word) comes before any exchange: the CPU's magazines and
 * top, the depot's counts and the pool as they were.
 */
static void test_double_full(void)
{
	setup(512, 8);
	struct kmem_cache *A, *B;
	CHECK_EQ(kmem_cache_create(k, "A", 64, 0, NULL, NULL, NULL, &A), 0);
	CHECK_EQ(kmem_cache_create(k, "B", 64, 0, NULL, NULL, NULL, &B), 0);
	static void *a[600];
	for (int i = 0; i < 600; i++)
		CHECK_EQ(kmem_cache_alloc(A, 0, &a[i]), 0);
	int n = 0;
	for (;;) { /* free on CPU 1 until both its magazines are full */
		struct cpu_mags m = cpu_mags(A, 1);
		uintptr_t full = (uintptr_t)&m.loaded->round[m.loaded->cap];
		if (m.loaded->cap > 0 && m.top == full && m.prev->cap > 0 &&
		    m.prev_n == m.prev->cap)
			break;
		CHECK_FATAL(n < 600);
		CHECK_EQ(kmem_cache_free(A, 1, a[n]), 0);
		n++;
	}
	struct cpu_mags m0 = cpu_mags(A, 1);
	/* In the previous magazine, in the loaded one; then a corrupt word. */
	BAD(kmem_cache_free(A, 1, a[0]), KMEM_EDOUBLE, a);
	BAD(kmem_cache_free(A, 1, a[n - 1]), KMEM_EDOUBLE, a);
	struct cpu_mags m1 = cpu_mags(A, 1);
	CHECK(m1.loaded == m0.loaded && m1.prev == m0.prev &&
	      m1.top == m0.top && m1.prev_n == m0.prev_n);
	struct kmem_slab *s;
	CHECK_EQ(kmem_obj_find(k, a[n], &s), 0);
	lf_atomic_u32 *bc = &s->buf[((uintptr_t)a[n] - s->base) / A->stride];
	struct snap s0, s1;
	snap_take(&s0, A, B);
	/* Relaxed, both: one thread. Neither a link nor a round's name. */
	lf_store_u32(bc, KMEM_BUF_NAMES, LF_RELAXED);
	CHECK_EQ(kmem_cache_free(A, 1, a[n]), KMEM_ECORRUPT);
	lf_store_u32(bc, KMEM_BUF_OUT, LF_RELAXED); /* a[n] handed out */
	snap_take(&s1, A, B);
	CHECK(snap_same(&s0, &s1));
	CHECK_EQ(s1.a.rejected_by[-KMEM_ECORRUPT],
		 s0.a.rejected_by[-KMEM_ECORRUPT] + 1);
	CHECK_EQ(kmem_check(k), 0);
	m1 = cpu_mags(A, 1);
	CHECK(m1.loaded == m0.loaded && m1.prev == m0.prev &&
	      m1.top == m0.top && m1.prev_n == m0.prev_n);
	for (int i = n; i < 600; i++)
		CHECK_EQ(kmem_cache_free(A, 1, a[i]), 0);
	CHECK_EQ(kmem_cache_destroy(A, 0), 0);
	CHECK_EQ(kmem_cache_destroy(B, 0), 0);
	teardown();
}

/* K7: memory in other CPUs' magazines and in other caches' slabs is not
 * stranded: an allocation that needs it gets it. */
static void test_no_stranding(void)
{
	setup(64, 8); /* 64 pages; caches keep up to 8 empty slabs */
	struct kmem_cache *A;
	CHECK_EQ(kmem_cache_create(k, "A", 256, 0, NULL, NULL, NULL, &A), 0);
	static void *p[4096];
	int n = 0;
	while (n < 4096 && kmem_cache_alloc(A, (unsigned)n % NCPU, &p[n]) == 0)
		n++;
	struct kmem_cache_stats st;
	kmem_cache_stats(A, &st);
	CHECK_EQ(st.failed, 1);
	CHECK_EQ(ksrc_held(&src), 64); /* every page used */
	CHECK_EQ((uint64_t)n, st.slabs * st.slab_objs);
	/* Free them all on every CPU: magazines, depot, slabs. */
	for (int i = 0; i < n; i++)
		CHECK_EQ(kmem_cache_free(A, (unsigned)(i * 7) % NCPU, p[i]), 0);
	kmem_cache_stats(A, &st);
	CHECK(st.in_mags > 0);
	/* The whole arena as one block: only if every page came back. */
	void *big;
	CHECK_EQ(kmalloc(k, 1, 64 * KMEM_PAGE_SIZE, &big), 0);
	kmem_cache_stats(A, &st);
	CHECK_EQ(st.slabs, 0);
	CHECK_EQ(st.in_mags, 0);
	/* And now A fails exactly (nothing held anywhere). */
	void *q;
	CHECK_EQ(kmem_cache_alloc(A, 2, &q), KMEM_ENOMEM);
	CHECK_EQ(kfree(k, 1, big), 0);
	/* A again: the same number of objects as before, all of them. */
	int m = 0;
	while (m < 4096 && kmem_cache_alloc(A, (unsigned)m % NCPU, &p[m]) == 0)
		m++;
	CHECK_EQ(m, n);
	/* All of A freed on CPU 1, the depot emptied: CPU 1's magazines
	 * hold objects that CPU 0 gets only by draining them. */
	for (int i = 0; i < m; i++)
		CHECK_EQ(kmem_cache_free(A, 1, p[i]), 0);
	kmem_reclaim(k, 0, false);
	kmem_cache_stats(A, &st);
	CHECK(st.in_mags > 0);
	m = 0;
	while (m < 4096 && kmem_cache_alloc(A, 0, &p[m]) == 0)
		m++;
	CHECK_EQ(m, n);
	/* And a cache B needs the pages that A's objects hold in magazines
	 * and in the depot: its allocation drains and reclaims A. */
	for (int i = 0; i < m; i++)
		CHECK_EQ(kmem_cache_free(A, (unsigned)i % NCPU, p[i]), 0);
	struct kmem_cache *B;
	CHECK_EQ(kmem_cache_create(k, "B", 1000, 0, NULL, NULL, NULL, &B), 0);
	int nb = 0;
	while (nb < 4096 && kmem_cache_alloc(B, 2, &p[nb]) == 0)
		nb++;
	struct kmem_cache_stats sb;
	kmem_cache_stats(B, &sb);
	CHECK_EQ(ksrc_held(&src), 64);
	CHECK_EQ((uint64_t)nb, sb.slabs * sb.slab_objs);
	CHECK_EQ(sb.slabs * (1u << 0) * sb.slab_pages, 64);
	for (int i = 0; i < nb; i++)
		CHECK_EQ(kmem_cache_free(B, 3, p[i]), 0);
	CHECK_EQ(kmem_cache_destroy(B, 0), 0);
	CHECK_EQ(kmem_cache_destroy(A, 3), 0);
	teardown();
}

static void test_watermark(void)
{
	setup(512, 2);
	struct kmem_cache *A;
	CHECK_EQ(kmem_cache_create(k, "A", 512, 0, NULL, NULL, NULL, &A), 0);
	static void *p[2000];
	for (int i = 0; i < 2000; i++)
		CHECK_EQ(kmem_cache_alloc(A, 0, &p[i]), 0);
	for (int i = 0; i < 2000; i++)
		CHECK_EQ(kmem_cache_free(A, 0, p[i]), 0);
	/* A reclaim returns every page it gave back: the slabs the flush
	 * gave back past the watermark as well as those reaped at the end. */
	struct kmem_stats ks0, ks1;
	kmem_stats(k, &ks0);
	size_t back = kmem_reclaim(k, 0, false); /* depot only */
	kmem_stats(k, &ks1);
	CHECK(back > 0);
	CHECK_EQ(back, ks0.pages - ks1.pages);
	struct kmem_cache_stats st;
	kmem_cache_stats(A, &st);
	/* Nothing in use: a slab that is not empty holds a round of CPU 0's
	 * magazines, and at most 2 empty slabs are kept (the watermark). */
	CHECK_EQ(st.inuse, 0);
	CHECK(st.in_mags > 0 && st.in_mags <= 2 * KMEM_MAG_MAX);
	CHECK(st.slabs <= 2 + st.in_mags);
	CHECK(st.reclaims > 0);
	kmem_stats(k, &ks0);
	size_t pages = kmem_reclaim(k, 0, true);
	kmem_stats(k, &ks1);
	CHECK(pages > 0);
	CHECK_EQ(pages, ks0.pages - ks1.pages);
	CHECK_EQ(ks1.pages, 0);
	kmem_cache_stats(A, &st);
	CHECK_EQ(st.slabs, 0);
	CHECK_EQ(kmem_cache_destroy(A, 0), 0);
	teardown();
}

/*
 * Magazine growth on bursts: a CPU that fills and empties thousands of
 * objects exchanges with the depot in one direction many times in a row,
 * and the cache's magazines grow to KMEM_MAG_MAX; a CPU whose exchanges
 * alternate (batches of three magazines: one or two exchanges each way)
 * leaves them as they are.
 */
static void test_mag_burst(void)
{
	setup(256, 1);
	struct kmem_cache *A, *B;
	CHECK_EQ(kmem_cache_create(k, "A", 32, 0, NULL, NULL, NULL, &A), 0);
	CHECK_EQ(kmem_cache_create(k, "B", 32, 0, NULL, NULL, NULL, &B), 0);
	static void *p[3000];
	struct kmem_cache_stats st;
	for (int r = 0; r < 50; r++) {
		for (int i = 0; i < 3 * KMEM_MAG_MIN; i++)
			CHECK_EQ(kmem_cache_alloc(B, 0, &p[i]), 0);
		for (int i = 0; i < 3 * KMEM_MAG_MIN; i++)
			CHECK_EQ(kmem_cache_free(B, 0, p[i]), 0);
	}
	kmem_cache_stats(B, &st);
	CHECK(st.depot_gets >= 40 && st.depot_puts >= 40); /* exchanges */
	CHECK_EQ(st.mag_size, KMEM_MAG_MIN);
	for (int i = 0; i < 3000; i++)
		CHECK_EQ(kmem_cache_alloc(A, 0, &p[i]), 0);
	kmem_cache_stats(A, &st);
	CHECK_EQ(st.mag_size, KMEM_MAG_MAX);
	for (int i = 0; i < 3000; i++)
		CHECK_EQ(kmem_cache_free(A, 0, p[i]), 0);
	kmem_cache_stats(A, &st);
	CHECK_EQ(st.mag_size, KMEM_MAG_MAX);
	CHECK_EQ(st.inuse, 0);
	CHECK_EQ(kmem_check(k), 0);
	CHECK_EQ(kmem_cache_destroy(A, 0), 0);
	CHECK_EQ(kmem_cache_destroy(B, 0), 0);
	teardown();
}

static void test_source_fails(void)
{
	setup(64, 1);
	void *p;
	src.fail = -42;
	CHECK_EQ(kmalloc(k, 0, 100, &p), KMEM_ESOURCE);
	CHECK_EQ(kmalloc(k, 0, 3 * KMEM_PAGE_SIZE, &p), KMEM_ESOURCE);
	src.fail = 0;
	src.lie = 1;
	CHECK_EQ(kmalloc(k, 0, 100, &p), KMEM_ESOURCE);
	/* A block that starts on the last page of the range and runs past
	 * its end (2 pages: a large block, and a slab of 2 pages): refused
	 * and given back, nothing of it kept. */
	src.lie = 2;
	CHECK_EQ(kmalloc(k, 0, 2 * KMEM_PAGE_SIZE, &p), KMEM_ESOURCE);
	struct kmem_cache *two;
	CHECK_EQ(kmem_cache_create(k, "two", 3000, 0, NULL, NULL, NULL, &two),
		 0);
	CHECK_EQ(kmem_cache_alloc(two, 0, &p), KMEM_ESOURCE);
	src.lie = 0;
	struct kmem_stats ks;
	kmem_stats(k, &ks);
	CHECK_EQ(ks.pages, 0);
	CHECK_EQ(ks.large_allocs, 0);
	CHECK_EQ(kmem_check(k), 0);
	struct kmem_cache_stats st;
	kmem_cache_stats(two, &st);
	CHECK(st.slab_pages > 1); /* the case: a slab of more than a page */
	CHECK_EQ(st.slabs, 0);
	CHECK_EQ(st.failed, 1);
	CHECK_EQ(kmem_cache_destroy(two, 0), 0);
	kmem_cache_stats(kmem_kmalloc_cache(k, 6), &st); /* kmalloc-128 */
	CHECK_EQ(st.failed, 2);
	CHECK_EQ(st.slabs, 0);
	CHECK_EQ(kmalloc(k, 0, 100, &p), 0);
	CHECK_EQ(kfree(k, 0, p), 0);
	teardown();
}

/*
 * A pool of one magazine: CPU 0 takes it, so CPU 1's allocations and
 * frees find none and go straight to the slabs, one object each; they
 * count in CPU 1's flows all the same (K4, the statistics).
 */
static void test_no_magazine(void)
{
	CHECK_FATAL(ksrc_init(&src, 64) == 0);
	struct kmem_config cfg = {
		.base = src.base,
		.size = src.npages * KMEM_PAGE_SIZE,
		.ncpus = NCPU,
		.max_caches = 32,
		.nmags = 1,
		.empty_max = 1,
		.source = { ksrc_alloc, ksrc_free, &src },
	};
	size_t sz = kmem_meta_size(&cfg);
	void *meta = NULL;
	CHECK_FATAL(sz != 0 && posix_memalign(&meta, 64, sz) == 0);
	CHECK_FATAL(kmem_init(&k, meta, sz, &cfg) == 0);
	struct kmem_cache *A;
	CHECK_EQ(kmem_cache_create(k, "A", 64, 0, NULL, NULL, NULL, &A), 0);
	void *a, *b[3];
	CHECK_EQ(kmem_cache_alloc(A, 0, &a), 0); /* the one magazine */
	for (int i = 0; i < 3; i++)
		CHECK_EQ(kmem_cache_alloc(A, 1, &b[i]), 0);
	struct kmem_stats ks;
	kmem_stats(k, &ks);
	CHECK_EQ(ks.mags_free, 0); /* the case: CPU 1 had none */
	struct kmem_cache_stats st;
	kmem_cache_stats(A, &st);
	CHECK_EQ(st.allocs, 4);
	CHECK_EQ(st.inuse, 4);
	CHECK_EQ(kmem_check(k), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(kmem_cache_free(A, 1, b[i]), 0);
	kmem_cache_stats(A, &st);
	CHECK_EQ(st.frees, 3);
	CHECK_EQ(st.inuse, 1);
	CHECK_EQ(kmem_check(k), 0);
	CHECK_EQ(kmem_cache_free(A, 0, a), 0);
	CHECK_EQ(kmem_cache_destroy(A, 0), 0);
	teardown();
}

static void test_mag_growth_bounds(void)
{
	setup(256, 1);
	struct kmem_cache *A;
	CHECK_EQ(kmem_cache_create(k, "A", 32, 0, NULL, NULL, NULL, &A), 0);
	struct kmem_cache_stats st;
	kmem_cache_stats(A, &st);
	CHECK_EQ(st.mag_size, KMEM_MAG_MIN);
	/* A free-only CPU and an alloc-only CPU: every magazine moves
	 * through the depot once. */
	static void *p[3000];
	for (int r = 0; r < 4; r++) {
		for (int i = 0; i < 3000; i++)
			CHECK_EQ(kmem_cache_alloc(A, 0, &p[i]), 0);
		for (int i = 0; i < 3000; i++)
			CHECK_EQ(kmem_cache_free(A, 1, p[i]), 0);
	}
	kmem_cache_stats(A, &st);
	/* Every magazine but the two the CPU holds, at the largest size. */
	CHECK(st.depot_puts >= 4 * (3000 - 2 * KMEM_MAG_MAX) / KMEM_MAG_MAX);
	CHECK(st.depot_gets > 0);
	CHECK(st.mag_size >= KMEM_MAG_MIN && st.mag_size <= KMEM_MAG_MAX);
	CHECK_EQ(kmem_check(k), 0);
	CHECK_EQ(kmem_cache_destroy(A, 0), 0);
	teardown();
}

/*
 * kmem_on_stride() (one multiply: the remainder test and the index) against
 * % and /, for every stride a slab can have up to a page and every offset
 * inside the largest slab; past a page, the offsets around each multiple.
 */
static void test_on_stride(void)
{
	struct kmem_cache c;
	uint64_t bad = 0, n = 0;
	for (uint64_t d = 8; d <= KMEM_PAGE_SIZE << KMEM_SLAB_MAX_ORDER;
	     d += 8) {
		c.recip = kmem_recip(d);
		uint64_t end = KMEM_PAGE_SIZE << KMEM_SLAB_MAX_ORDER;
		for (uint64_t off = 0; off < end; off++, n++) {
			if (d > KMEM_PAGE_SIZE && off % d > 1 &&
			    off % d < d - 1)
				off += d - 2 - off % d; /* next: d*k - 1 */
			uint64_t i;
			bad += kmem_on_stride(&c, off, &i) != (off % d == 0) ||
			       i != off / d;
		}
	}
	CHECK_EQ(bad, 0);
	CHECK(n > 1000000);
}

/*
 * The free's fast check (kmem_free_ok: the page map entry alone) against
 * the full classification (kmem_obj_find: the slab header), at every byte
 * of every page the test's objects use or used: slabs of caches of several
 * sizes, alignments, slab orders and tag offsets (a constructor), kmalloc
 * classes, a large block, slabs given back, pages never handed out. For
 * each cache c and address a: fast(c, a) iff a is an object start of a
 * slab of c. Two caches of one layout are among them: only the key in
 * the entry tells their slabs apart.
 */
#define FC_N 10
static void fc_ctor(void *o, void *arg)
{
	(void)arg;
	memset(o, 0x5a, 48);
}

static void test_free_check(void)
{
	static const size_t size[FC_N] = { 8,    24, 64, 64,   100,
					   1000, 24, 48, 3000, 5000 };
	static const size_t align[FC_N] = {
		0, 8, 64, 64, 16, 0, 32, 0, 0, 4096
	};
	struct kmem_cache *c[FC_N + 2], *gone;
	void *p[FC_N][8], *big, *km, *g[4];
	setup(256, 8);
	for (int i = 0; i < FC_N; i++) {
		CHECK_EQ(kmem_cache_create(k, "fc", size[i], align[i],
					   i == 7 ? fc_ctor : NULL, NULL, NULL,
					   &c[i]),
			 0);
		for (int j = 0; j < 8; j++)
			CHECK_EQ(kmem_cache_alloc(c[i], (unsigned)j % NCPU,
						  &p[i][j]),
				 0);
	}
	CHECK_EQ(kmem_cache_create(k, "gone", 32, 0, NULL, NULL, NULL, &gone),
		 0);
	for (int j = 0; j < 4; j++)
		CHECK_EQ(kmem_cache_alloc(gone, 0, &g[j]), 0);
	CHECK_EQ(kmalloc(k, 1, 3 * KMEM_PAGE_SIZE, &big), 0);
	CHECK_EQ(kmalloc(k, 2, 200, &km), 0);
	c[FC_N] = kmem_cache_of(k, km);
	c[FC_N + 1] = kmem_kmalloc_cache(k, 0);
	for (int j = 0; j < 4; j++)
		CHECK_EQ(kmem_cache_free(gone, 0, g[j]), 0);
	kmem_reclaim(k, 0, true); /* gone's slab: tombstones */
	uint64_t bad = 0, objs = 0;
	for (uintptr_t a = src.base; a < src.base + 256 * KMEM_PAGE_SIZE; a++) {
		uintptr_t e = lf_load_uptr(
			&k->pagemap[(a - src.base) >> KMEM_PAGE_SHIFT],
			LF_RELAXED); /* Relaxed: one thread */
		struct kmem_slab *s = NULL;
		int err = kmem_obj_find(k, (void *)a, &s);
		objs += err == 0;
		for (int i = 0; i < FC_N + 2; i++) {
			bool want = err == 0 && s->cache == c[i];
			lf_atomic_u32 *bc = NULL;
			bool ok = kmem_free_ok(c[i], a, e, &bc);
			if (ok && want &&
			    bc != &s->buf[(a - s->base) / c[i]->stride])
				ok = false; /* the wrong bufctl word */
			if (ok != want && bad++ == 0)
				printf("free check: cache %d address +%#lx: "
				       "fast %d, find %d\n",
				       i, (unsigned long)(a - src.base), !want,
				       err);
		}
	}
	CHECK_EQ(bad, 0);
	CHECK(objs >= FC_N * 8);
	for (int i = 0; i < FC_N; i++) {
		for (int j = 0; j < 8; j++)
			CHECK_EQ(kmem_cache_free(c[i], 0, p[i][j]), 0);
		CHECK_EQ(kmem_cache_destroy(c[i], 0), 0);
	}
	CHECK_EQ(kmem_cache_destroy(gone, 0), 0);
	CHECK_EQ(kfree(k, 0, big), 0);
	CHECK_EQ(kfree(k, 0, km), 0);
	teardown();
}

#ifdef LF_DEBUG
static void test_debug(void)
{
	setup(128, 1);
	struct kmem_cache *A;
	CHECK_EQ(kmem_cache_create(k, "A", 40, 0, NULL, NULL, NULL, &A), 0);
	void *p, *q;
	CHECK_EQ(kmem_cache_alloc(A, 0, &p), 0);
	/* An overflow into the red zone: free refuses, nothing changed
	 * (the object, its contents included, stays the caller's). */
	memset(p, 0x5a, 40);
	((unsigned char *)p)[40] = 0;
	CHECK_EQ(kmem_cache_free(A, 0, p), KMEM_ECORRUPT);
	for (int i = 0; i < 40; i++)
		CHECK_EQ(((unsigned char *)p)[i], 0x5a);
	struct kmem_cache_stats st;
	kmem_cache_stats(A, &st);
	CHECK_EQ(st.inuse, 1);
	CHECK_EQ(st.rejected_by[-KMEM_ECORRUPT], 1);
	((unsigned char *)p)[40] = 0xbb; /* repaired: the free goes through */
	CHECK_EQ(kmem_cache_free(A, 0, p), 0);
	/* A write after free: the allocation that would hand it out sets it
	 * aside and says so. */
	((unsigned char *)p)[5] = 1;
	CHECK_EQ(kmem_cache_alloc(A, 0, &q), KMEM_ECORRUPT);
	kmem_cache_stats(A, &st);
	CHECK_EQ(st.corrupt, 1);
	CHECK_EQ(kmem_check(k), 0); /* K4 counts the object set aside */
	CHECK_EQ(kmem_cache_alloc(A, 0, &q), 0);
	CHECK(q != p);
	CHECK_EQ(kmem_cache_free(A, 0, q), 0);
	CHECK_EQ(kmem_cache_destroy(A, 0), KMEM_EBUSY); /* one set aside */
	CHECK_EQ(kmem_check(k), 0);
	free(k); /* one object set aside: no teardown */
	ksrc_fini(&src);
	printf("debug: red zone and poison checked\n");
}
#endif

int main(void)
{
	test_basic();
	test_kmalloc();
	test_no_magazine();
	test_ctor();
	test_bad_input();
	test_alloc_result();
	test_double_full();
	test_no_stranding();
	test_watermark();
	test_mag_burst();
	test_source_fails();
	test_mag_growth_bounds();
	test_on_stride();
	test_free_check();
#ifdef LF_DEBUG
	test_debug();
#endif
	return check_exit("test_kmem");
}
