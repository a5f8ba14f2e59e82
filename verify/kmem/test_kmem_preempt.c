/*
 * verify/kmem/test_kmem_preempt.c: a double free of an object sitting in a
 * magazine, preempted (verify/preempt.h) before each atomic step of the
 * free by another CPU that drains that magazine into the slabs and then
 * frees other objects into the same magazine, so that the round the
 * object's bufctl word named holds another object. The free must return
 * KMEM_EDOUBLE at every step: a check that reads the word, is preempted,
 * and then reads the round would see another object there and take the
 * double free (kmem_free_obj() reads no round: it refuses any word but
 * KMEM_BUF_OUT, which the drain and the refill never write). Deterministic; the
 * case must be reached at least once, or the test fails.
 *
 * Then two frees of one handed-out slab object that race (docs/design.md
 * 4.4): the second, on another CPU, runs before each atomic step of the
 * first, both CPUs with a loaded magazine that has room (the hit) or with
 * none (the slow path). Exactly one must succeed and the other return
 * KMEM_EDOUBLE, the object then be free once (K1, inuse 0), and allocating
 * every object back on both CPUs must never hand out one twice.
 *
 * Then two kfree()s of one large block (kmalloc past KMEM_KMALLOC_MAX:
 * whole pages, claimed back by a CAS on the page map's head word, 4.1):
 * the second, on another CPU, runs before each atomic step of the first.
 * Exactly one of them must succeed and the other say KMEM_EDOUBLE, the
 * block go back to the source once, and nothing stay held.
 */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "kmem.h"
#include "kmem_i.h" /* the bufctl word and the round it names */
#include "kmem_src.h"
#include "preempt.h"

#define NCPU 2
#define POOL 64

static struct ksrc src;
static struct kmem *k;
static struct kmem_cache *c;
static void *p, *pool[POOL];
static uint32_t named;  /* p's bufctl word after its first free */
static bool pool_freed; /* by the interfering CPU */
static bool reached;    /* the round named held another object */

static uint32_t buf_word(const void *o)
{
	struct kmem_slab *s = kmem_slab_of(k, o);
	CHECK_FATAL(s != NULL);
	/* Relaxed: the test's own snapshot. */
	return lf_load_u32(&s->buf[kmem_div(c, (uintptr_t)o - s->base)],
			   LF_RELAXED);
}

/* CPU 0 drained into the slabs, then refilled with the pool's objects. */
static void drain_refill(void *arg)
{
	(void)arg;
	kmem_cpu_drain(k, 0);
	for (unsigned i = 0; i < POOL; i++) {
		CHECK_EQ(kmem_cache_free(c, 0, pool[i]), 0);
		/* Relaxed: the test's own snapshot. */
		uintptr_t r =
			lf_load_uptr(kmem_round(c->mags, named), LF_RELAXED);
		if (r != 0 && r != (uintptr_t)p)
			reached = true;
	}
	pool_freed = true;
}

/* One double free of p (on CPU 1), preempted at step n; false when the
 * free ran to its end before step n. */
static bool one(unsigned long n)
{
	CHECK_FATAL(ksrc_init(&src, 256) == 0);
	k = ksrc_kmem(&src, NCPU, 32, 1);
	CHECK_FATAL(k != NULL);
	CHECK_EQ(kmem_cache_create(k, "dbl", 64, 8, NULL, NULL, NULL, &c), 0);
	for (unsigned i = 0; i < POOL; i++)
		CHECK_EQ(kmem_cache_alloc(c, 1, &pool[i]), 0);
	CHECK_EQ(kmem_cache_alloc(c, 1, &p), 0);
	/* The first free: p goes into a round of CPU 0's loaded magazine. */
	CHECK_EQ(kmem_cache_free(c, 0, p), 0);
	named = buf_word(p);
	CHECK_FATAL(named < c->names);
	pool_freed = false;
	preempt_arm(n, drain_refill, NULL);
	int rc = kmem_cache_free(c, 1, p);
	bool ran = preempt_disarm();
	CHECK_EQ(rc, KMEM_EDOUBLE);
	if (!pool_freed)
		for (unsigned i = 0; i < POOL; i++)
			CHECK_EQ(kmem_cache_free(c, 0, pool[i]), 0);
	struct kmem_cache_stats st;
	kmem_cache_stats(c, &st);
	CHECK_EQ(st.inuse, 0); /* nothing handed out, p free once */
	CHECK_EQ(kmem_check(k), 0);
	kmem_reclaim(k, 0, true);
	CHECK_EQ(ksrc_held(&src), 0);
	free(k);
	ksrc_fini(&src);
	return ran;
}

static int race_rc; /* the interfering free's result */
static bool race_kfree;

static void free_race(void *arg)
{
	(void)arg;
	race_rc = race_kfree ? kfree(k, 0, p) : kmem_cache_free(c, 0, p);
}

static unsigned both_ok; /* steps at which both frees succeeded */

/* A kmem over src with a pool of one magazine: CPU 0 takes it, CPU 1's
 * frees go straight to the slab. */
static struct kmem *kmem_one_mag(void)
{
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
	struct kmem *km;
	CHECK_FATAL(sz != 0 && posix_memalign(&meta, 64, sz) == 0);
	CHECK_FATAL(kmem_init(&km, meta, sz, &cfg) == 0);
	return km;
}

enum race { RACE_SLOW, RACE_HIT, RACE_NOMAG };
static const char *const race_name[] = { "the slow path", "the hit",
					 "no magazine: to the slab" };

/*
 * Two frees of p, handed out from CPU 0: the first on CPU 1, the second
 * on CPU 0 before step n of the first. RACE_HIT: both CPUs have a loaded
 * magazine with room; RACE_SLOW: none; RACE_NOMAG: the pool has one
 * magazine, CPU 0's, and CPU 1 frees straight to the slab. False when
 * the first free ran to its end before step n.
 */
static bool one_race(unsigned long n, enum race how, bool kf)
{
	enum { OBJS = 160 };
	static void *got[2 * OBJS + 2];
	bool warm = how == RACE_HIT;
	CHECK_FATAL(ksrc_init(&src, 256) == 0);
	k = how == RACE_NOMAG ? kmem_one_mag() : ksrc_kmem(&src, NCPU, 32, 1);
	CHECK_FATAL(k != NULL);
	if (kf)
		c = kmem_kmalloc_cache(k, 4); /* kmalloc-64 */
	else
		CHECK_EQ(kmem_cache_create(k, "race", 64, 8, NULL, NULL, NULL,
					   &c),
			 0);
	if (warm) {
		void *w[4];
		for (unsigned i = 0; i < 4; i++)
			CHECK_EQ(kmem_cache_alloc(c, 0, &w[i]), 0);
		CHECK_EQ(kmem_cache_free(c, 1, w[0]), 0);
		CHECK_EQ(kmem_cache_free(c, 1, w[1]), 0);
		CHECK_EQ(kmem_cache_free(c, 0, w[2]), 0);
		CHECK_EQ(kmem_cache_free(c, 0, w[3]), 0);
	}
	CHECK_EQ(kmem_cache_alloc(c, 0, &p), 0);
	race_kfree = kf;
	race_rc = 1;
	preempt_arm(n, free_race, NULL);
	int rc = kf ? kfree(k, 1, p) : kmem_cache_free(c, 1, p);
	bool ran = preempt_disarm();
	if (!ran)
		free_race(NULL); /* after it: a plain double free */
	if (rc == 0 && race_rc == 0)
		both_ok++;
	CHECK((rc == 0 && race_rc == KMEM_EDOUBLE) ||
	      (rc == KMEM_EDOUBLE && race_rc == 0));
	struct kmem_cache_stats st;
	kmem_cache_stats(c, &st);
	CHECK_EQ(st.inuse, 0); /* p free once */
	CHECK_EQ(st.rejected_by[-KMEM_EDOUBLE], 1);
	CHECK_EQ(kmem_check(k), 0);
	/* Everything back on both CPUs: no object handed out twice. */
	unsigned m = 0;
	for (unsigned i = 0; i < OBJS; i++)
		for (unsigned v = 0; v < NCPU; v++) {
			CHECK_EQ(kmem_cache_alloc(c, v, &got[m]), 0);
			for (unsigned j = 0; j < m; j++)
				if (got[j] == got[m]) {
					CHECK(!"an object handed out twice");
					break;
				}
			m++;
		}
	for (unsigned j = 0; j < m; j++)
		kmem_cache_free(c, j % NCPU, got[j]);
	kmem_reclaim(k, 0, true);
	free(k);
	ksrc_fini(&src);
	return ran;
}

static void *big;
static int big_rc; /* the interfering free's result */

static void free_big(void *arg)
{
	(void)arg;
	big_rc = kfree(k, 1, big);
}

/* Two frees of one large block, the second before step n of the first;
 * false when the first ran to its end before step n. */
static bool one_large(unsigned long n)
{
	CHECK_FATAL(ksrc_init(&src, 256) == 0);
	k = ksrc_kmem(&src, NCPU, 32, 1);
	CHECK_FATAL(k != NULL);
	CHECK_EQ(kmalloc(k, 0, 4 * KMEM_PAGE_SIZE, &big), 0);
	CHECK_EQ(ksrc_held(&src), 4);
	big_rc = 1;
	preempt_arm(n, free_big, NULL);
	int rc = kfree(k, 0, big);
	bool ran = preempt_disarm();
	if (!ran)
		big_rc = kfree(k, 1, big); /* after it: a plain double free */
	CHECK((rc == 0 && big_rc == KMEM_EDOUBLE) ||
	      (rc == KMEM_EDOUBLE && big_rc == 0));
	struct kmem_stats st;
	kmem_stats(k, &st);
	CHECK_EQ(st.large_frees, 1);
	CHECK_EQ(st.pages, 0);
	CHECK_EQ(src.frees, 1); /* the block given back once */
	CHECK_EQ(ksrc_held(&src), 0);
	CHECK_EQ(kmem_check(k), 0);
	free(k);
	ksrc_fini(&src);
	return ran;
}

int main(void)
{
	unsigned long n = 1;
	while (one(n))
		n++;
	printf("test_kmem_preempt: a double free preempted at each of its "
	       "%lu steps; the round named held another object: %s\n",
	       n - 1, reached ? "yes" : "no");
	CHECK(n > 3);
	CHECK(reached);
	for (int kf = 0; kf < 2; kf++)
		for (int how = RACE_SLOW; how <= RACE_NOMAG; how++) {
			unsigned long r = 1;
			both_ok = 0;
			while (one_race(r, (enum race)how, kf))
				r++;
			printf("test_kmem_preempt: two racing %s of one object "
			       "(%s), the second before each of the first's "
			       "%lu steps: both succeeded at %u\n",
			       kf ? "kfree()s" : "kmem_cache_free()s",
			       race_name[how], r - 1, both_ok);
			CHECK(r > 3);
		}
	unsigned long m = 1;
	while (one_large(m))
		m++;
	printf("test_kmem_preempt: two frees of a large block, the second "
	       "before each of the first's %lu steps\n",
	       m - 1);
	CHECK(m > 2);
	return check_exit("test_kmem_preempt");
}
