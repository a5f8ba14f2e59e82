/*
 * model_kmem.c: kmem against a reference model, over random operation
 * sequences from many seeds.
 *
 * The reference is the simplest allocator model there is: a set of live
 * objects (address, size, cache) and a byte-granular owner map of the
 * arena. Operations: cache create and destroy (EBUSY exactly when the
 * reference holds objects of it), cache alloc and free, kmalloc and kfree
 * of every size class and of large sizes, reclaim (depots only or every
 * CPU), a CPU's magazine flush, and bad frees (a double free right after a
 * free, an interior pointer, an object given to another cache), on random
 * CPU numbers. After every allocation: the object does not overlap any
 * live object (owner map), lies inside its slab (or its large block), keeps
 * its cache's alignment; its bytes are stamped and the stamp is checked at
 * free. Each bad free must get its code and change nothing (statistics).
 * Every CHECK_EVERY operations: kmem_check() (K1-K8) and, per cache, the
 * objects in use equal the reference's count. At the end everything is
 * freed and reclaimed: no page is held.
 *
 * Usage: model_kmem [--seeds N] [--ops N] [--seed S]   (S: replay one)
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kmem.h"
#include "kmem_i.h"
#include "kmem_src.h"

#define NCPUS 3
#define PAGES 4096
#define MAXLIVE 3000
#define MAXCACHES 8
#define CHECK_EVERY 64

struct live {
	uint8_t *p;
	size_t size;
	int cache; /* index into caches[], or -1: kmalloc */
	uint8_t stamp;
};

struct mcache {
	struct kmem_cache *c;
	size_t size, align;
	unsigned n; /* live objects */
};

struct model {
	struct ksrc src;
	struct kmem *k;
	struct live live[MAXLIVE];
	unsigned nlive;
	struct mcache caches[MAXCACHES];
	uint8_t *owner; /* one byte per arena byte: 1 if live */
	uint64_t rng, seed, op;
};

static uint64_t rnd(struct model *m)
{
	m->rng ^= m->rng << 13;
	m->rng ^= m->rng >> 7;
	m->rng ^= m->rng << 17;
	return m->rng;
}

static void fail_where(struct model *m)
{
	fprintf(stderr, "  at seed %" PRIu64 " op %" PRIu64 "\n", m->seed,
		m->op);
}

/* A new object: no overlap, inside the arena, its slab, aligned; stamp. */
static void took(struct model *m, void *vp, size_t size, int ci)
{
	uint8_t *p = vp;
	uintptr_t off = (uintptr_t)p - m->src.base;
	CHECK_FATAL(off + size <= PAGES * KMEM_PAGE_SIZE);
	for (size_t i = 0; i < size; i++)
		if (m->owner[off + i]) {
			CHECK(!"object overlaps a live one");
			fail_where(m);
			break;
		}
	memset(m->owner + off, 1, size);
	if (ci >= 0) {
		struct mcache *mc = &m->caches[ci];
		CHECK(((uintptr_t)p & (mc->align - 1)) == 0);
		struct kmem_slab *s = kmem_slab_of(m->k, p);
		CHECK(s && s->cache == mc->c);
		if (s)
			CHECK((uintptr_t)p >= s->base &&
			      (uintptr_t)p + size <=
				      (uintptr_t)s + (KMEM_PAGE_SIZE
						      << s->cache->order));
		mc->n++;
	} else if (size <= KMEM_KMALLOC_MAX) {
		CHECK(kmem_ksize(m->k, p) >= size);
		CHECK(((uintptr_t)p & 7) == 0);
	} else {
		CHECK(((uintptr_t)p & (KMEM_PAGE_SIZE - 1)) == 0);
	}
	struct live *l = &m->live[m->nlive++];
	l->p = p;
	l->size = size;
	l->cache = ci;
	l->stamp = (uint8_t)rnd(m);
	memset(p, l->stamp, size);
}

/* Remove live object i from the reference, checking its stamp. */
static struct live drop(struct model *m, unsigned i)
{
	struct live l = m->live[i];
	for (size_t j = 0; j < l.size; j++)
		if (l.p[j] != l.stamp) {
			CHECK(!"stamp overwritten while live");
			fail_where(m);
			break;
		}
	memset(m->owner + ((uintptr_t)l.p - m->src.base), 0, l.size);
	if (l.cache >= 0)
		m->caches[l.cache].n--;
	m->live[i] = m->live[--m->nlive];
	return l;
}

static int do_free(struct model *m, const struct live *l, unsigned cpu)
{
	if (l->cache >= 0)
		return kmem_cache_free(m->caches[l->cache].c, cpu, l->p);
	return kfree(m->k, cpu, l->p);
}

static uint64_t rejected(struct model *m)
{
	struct kmem_stats ks;
	kmem_stats(m->k, &ks);
	uint64_t r = ks.rejected;
	for (unsigned i = 0; i < KMEM_KMALLOC_CLASSES; i++) {
		struct kmem_cache_stats st;
		kmem_cache_stats(kmem_kmalloc_cache(m->k, i), &st);
		r += st.rejected;
	}
	for (int i = 0; i < MAXCACHES; i++)
		if (m->caches[i].c) {
			struct kmem_cache_stats st;
			kmem_cache_stats(m->caches[i].c, &st);
			r += st.rejected;
		}
	return r;
}

static void op_alloc(struct model *m, unsigned cpu)
{
	if (m->nlive >= MAXLIVE)
		return;
	int ci = (int)(rnd(m) % (MAXCACHES + 2)) - 2;
	void *p;
	if (ci >= 0 && m->caches[ci].c) {
		CHECK_EQ(kmem_cache_alloc(m->caches[ci].c, cpu, &p), 0);
		took(m, p, m->caches[ci].size, ci);
		return;
	}
	size_t size = rnd(m) % 16 == 0 ? KMEM_KMALLOC_MAX + rnd(m) % 20000
				       : 1 + rnd(m) % KMEM_KMALLOC_MAX;
	if (rnd(m) % 4 == 0)
		size = 1 + rnd(m) % 64;
	CHECK_EQ(kmalloc(m->k, cpu, size, &p), 0);
	took(m, p, size, -1);
}

static void op_free(struct model *m, unsigned cpu)
{
	if (m->nlive == 0)
		return;
	struct live l = drop(m, (unsigned)(rnd(m) % m->nlive));
	CHECK_EQ(do_free(m, &l, cpu), 0);
	if (rnd(m) % 8 == 0) { /* a double free at once: EDOUBLE, counted */
		uint64_t r0 = rejected(m);
		CHECK_EQ(do_free(m, &l, (unsigned)(rnd(m) % NCPUS)),
			 KMEM_EDOUBLE);
		CHECK_EQ(rejected(m), r0 + 1);
	}
}

static void op_bad(struct model *m, unsigned cpu)
{
	if (m->nlive == 0)
		return;
	struct live *l = &m->live[rnd(m) % m->nlive];
	uint64_t r0 = rejected(m);
	if (l->size > 1 && rnd(m) % 2) {
		void *in = l->p + 1 + rnd(m) % (l->size - 1);
		int e = l->cache >= 0 ? kmem_cache_free(m->caches[l->cache].c,
							cpu, in)
				      : kfree(m->k, cpu, in);
		/* Inside an object: EINTERIOR (the cache's slack past a kmalloc
		 * size is still inside the object). */
		CHECK_EQ(e, KMEM_EINTERIOR);
	} else {
		int other = (int)(rnd(m) % MAXCACHES);
		if (!m->caches[other].c || other == l->cache)
			return;
		CHECK_EQ(kmem_cache_free(m->caches[other].c, cpu, l->p),
			 KMEM_EWRONG);
	}
	CHECK_EQ(rejected(m), r0 + 1);
}

static void op_create(struct model *m)
{
	int ci = (int)(rnd(m) % MAXCACHES);
	struct mcache *mc = &m->caches[ci];
	if (mc->c) { /* destroy: EBUSY iff the reference holds objects */
		int e = kmem_cache_destroy(mc->c, (unsigned)(rnd(m) % NCPUS));
		CHECK_EQ(e, mc->n ? KMEM_EBUSY : 0);
		if (e == 0)
			mc->c = NULL;
		return;
	}
	static const size_t sizes[] = { 8, 24, 40, 100, 256, 700, 3000, 9000 };
	mc->size = sizes[rnd(m) % 8] + rnd(m) % 8;
	mc->align = (size_t)1 << (rnd(m) % 8);
	if (mc->align < 8)
		mc->align = 8;
	CHECK_EQ(kmem_cache_create(m->k, "model", mc->size, mc->align, NULL,
				   NULL, NULL, &mc->c),
		 0);
	mc->n = 0;
}

static void check_counts(struct model *m)
{
	CHECK_EQ(kmem_check(m->k), 0);
	for (int i = 0; i < MAXCACHES; i++)
		if (m->caches[i].c) {
			struct kmem_cache_stats st;
			kmem_cache_stats(m->caches[i].c, &st);
			CHECK_EQ(st.inuse, m->caches[i].n);
			CHECK_EQ(st.slabs * st.slab_objs,
				 st.inuse + st.in_mags + st.in_slabs);
		}
}

static void run(uint64_t seed, uint64_t ops)
{
	static struct model m;
	memset(&m, 0, sizeof(m));
	m.seed = seed;
	m.rng = seed * 0x9e3779b97f4a7c15ull + 1;
	CHECK_FATAL(ksrc_init(&m.src, PAGES) == 0);
	m.k = ksrc_kmem(&m.src, NCPUS, 32, (unsigned)(seed % 3));
	CHECK_FATAL(m.k != NULL);
	m.owner = calloc(PAGES, KMEM_PAGE_SIZE);
	CHECK_FATAL(m.owner != NULL);
	for (m.op = 0; m.op < ops; m.op++) {
		unsigned cpu = (unsigned)(rnd(&m) % NCPUS);
		unsigned r = (unsigned)(rnd(&m) % 1000);
		if (r < 450)
			op_alloc(&m, cpu);
		else if (r < 900)
			op_free(&m, cpu);
		else if (r < 950)
			op_bad(&m, cpu);
		else if (r < 970)
			op_create(&m);
		else if (r < 985)
			kmem_cpu_drain(m.k, cpu);
		else
			kmem_reclaim(m.k, cpu, r % 2);
		if (m.op % CHECK_EVERY == 0)
			check_counts(&m);
	}
	check_counts(&m);
	while (m.nlive) {
		struct live l = drop(&m, m.nlive - 1);
		CHECK_EQ(do_free(&m, &l, (unsigned)(rnd(&m) % NCPUS)), 0);
	}
	for (int i = 0; i < MAXCACHES; i++)
		if (m.caches[i].c)
			CHECK_EQ(kmem_cache_destroy(m.caches[i].c, 0), 0);
	kmem_reclaim(m.k, 0, true);
	CHECK_EQ(kmem_check(m.k), 0);
	CHECK_EQ(ksrc_held(&m.src), 0);
	free(m.owner);
	free(m.k);
	ksrc_fini(&m.src);
}

int main(int argc, char **argv)
{
	return check_model_main(argc, argv, "model_kmem", 20, 20000, run);
}
