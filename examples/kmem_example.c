/*
 * kmem_example.c: object caches and kmalloc (kmem/kmem.h) over the buddy
 * allocator (buddy/buddy.h) as their page source, as a kernel's heap would
 * be set up once its page allocator runs.
 *
 *  1. Memory: a 16 MiB arena stands in for RAM. Unlike buddy_example, the
 *     addresses are real: kmem writes its slab headers and the objects.
 *     The buddy manages the arena as one region.
 *  2. The page source: two callbacks that take 2^order pages from the buddy
 *     through the calling CPU's context and give them back; kmem is told
 *     the range they come from, the buddy's region.
 *  3. kmem_init() in metadata sized by kmem_meta_size(), then a cache with
 *     a constructor (kmalloc's size classes come with the instance).
 *  4. Per-CPU use: every call names its CPU number, each used by one thread
 *     at a time; here two threads play CPUs 0 and 1, and each frees the
 *     other's kmalloc blocks (remote frees).
 *  5. Error handling: each bad free has its own code, is counted, and
 *     changes nothing; ENOMEM only once nothing is stranded.
 *  6. Reclaim: kmem_reclaim() gives every empty slab back to the buddy.
 *
 * Every result is checked: the program exits 1 on the first wrong one.
 * ctest runs it (examples/CMakeLists.txt, label example).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buddy.h"
#include "kmem.h"
#include "platform_user.h"

#define NCPUS 2
#define ARENA (16u << 20) /* 16 MiB, aligned to its size */
#define NOBJ 1000
#define CONN_MAGIC 0xc0ffee

static struct buddy_zone *zone;
static struct kmem *km;
static struct kmem_cache *conns;
static pthread_barrier_t phase;

static void check(const char *what, int rc, int want)
{
	if (rc != want) {
		fprintf(stderr, "kmem_example: %s: %s (expected %s)\n", what,
			kmem_strerror(rc), kmem_strerror(want));
		exit(1);
	}
}

/* 2. The page source: the buddy, through the calling CPU's context. */
static int src_alloc(void *arg, unsigned cpu, unsigned order, uintptr_t *a)
{
	(void)arg;
	uint64_t addr;
	int rc = buddy_alloc(buddy_zone_cpu(zone, cpu), order, &addr);
	if (rc == BUDDY_ENOMEM)
		return KMEM_ENOMEM; /* kmem reclaims and retries, then fails */
	if (rc != BUDDY_OK)
		return KMEM_ESOURCE;
	*a = (uintptr_t)addr;
	return 0;
}

static void src_free(void *arg, unsigned cpu, uintptr_t a, unsigned order)
{
	(void)arg;
	if (buddy_free(buddy_zone_cpu(zone, cpu), a, order) != BUDDY_OK)
		exit(1); /* kmem gives back only what it was given */
}

/* A cached object: constructed once per slab, taken back constructed. */
struct conn {
	uint32_t magic, refs;
	char name[56];
};

static void conn_ctor(void *obj, void *arg)
{
	(void)arg;
	*(struct conn *)obj = (struct conn){ .magic = CONN_MAGIC };
}

/* 4. One CPU: objects and kmalloc blocks of every class and some large. */
static void *cpu_work(void *arg)
{
	unsigned cpu = (unsigned)(uintptr_t)arg;
	static void *blk[NCPUS][NOBJ];
	struct conn *c[NOBJ];
	lf_platform_user_set_cpu(cpu);
	for (unsigned i = 0; i < NOBJ; i++) {
		check("kmem_cache_alloc",
		      kmem_cache_alloc(conns, cpu, (void **)&c[i]), KMEM_OK);
		if (c[i]->magic != CONN_MAGIC || c[i]->refs != 0)
			check("a constructed object", KMEM_ECORRUPT, KMEM_OK);
		c[i]->refs = 1;
		size_t size = 1 + (i * 37) % (i % 50 ? 2048 : 9000);
		check("kmalloc", kmalloc(km, cpu, size, &blk[cpu][i]), KMEM_OK);
		if (kmem_ksize(km, blk[cpu][i]) < size)
			check("ksize below the size asked", KMEM_EINVAL,
			      KMEM_OK);
		memset(blk[cpu][i], (int)(cpu * NOBJ + i), size);
	}
	for (unsigned i = 0; i < NOBJ; i++) {
		size_t size = 1 + (i * 37) % (i % 50 ? 2048 : 9000);
		unsigned char *b = blk[cpu][i];
		if (b[0] != (unsigned char)(cpu * NOBJ + i) ||
		    b[size - 1] != b[0])
			check("a block overwritten", KMEM_ECORRUPT, KMEM_OK);
		c[i]->refs = 0; /* back to its constructed state */
		check("kmem_cache_free", kmem_cache_free(conns, cpu, c[i]),
		      KMEM_OK);
	}
	pthread_barrier_wait(&phase); /* both CPUs' blocks are allocated */
	for (unsigned i = 0; i < NOBJ; i++) /* a remote free */
		check("kfree", kfree(km, cpu, blk[1 - cpu][i]), KMEM_OK);
	return NULL;
}

/* Bad calls refused so far: by the instance and by every cache. */
static uint64_t refused(void)
{
	struct kmem_stats ks;
	struct kmem_cache_stats cs;
	kmem_stats(km, &ks);
	uint64_t n = ks.rejected;
	for (unsigned i = 0; i < KMEM_KMALLOC_CLASSES; i++) {
		kmem_cache_stats(kmem_kmalloc_cache(km, i), &cs);
		n += cs.rejected;
	}
	kmem_cache_stats(conns, &cs);
	return n + cs.rejected;
}

/* 5. Bad calls on CPU 0: each its own code, counted, nothing changed. */
static void bad_frees(void)
{
	void *p, *q;
	struct kmem_cache_stats before, after;
	int local;
	check("kmalloc", kmalloc(km, 0, 100, &p), KMEM_OK);
	check("kmem_cache_alloc", kmem_cache_alloc(conns, 0, &q), KMEM_OK);
	memcpy(p, "kept", 5);
	kmem_cache_stats(kmem_cache_of(km, p), &before);
	check("interior", kfree(km, 0, (char *)p + 8), KMEM_EINTERIOR);
	check("foreign", kfree(km, 0, &local), KMEM_EFOREIGN);
	check("wrong cache", kmem_cache_free(conns, 0, p), KMEM_EWRONG);
	check("kfree of a cache object", kfree(km, 0, q), KMEM_EWRONG);
	check("destroy with an object out", kmem_cache_destroy(conns, 0),
	      KMEM_EBUSY);
	check("size 0", kmalloc(km, 0, 0, &q), KMEM_EINVAL);
	kmem_cache_stats(kmem_cache_of(km, p), &after);
	if (after.inuse != before.inuse || strcmp(p, "kept") != 0)
		check("a bad free changed something", KMEM_ECORRUPT, KMEM_OK);
	check("kfree", kfree(km, 0, p), KMEM_OK);
	check("double free", kfree(km, 0, p), KMEM_EDOUBLE);
	check("kmem_cache_free", kmem_cache_free(conns, 0, q), KMEM_OK);
	if (refused() != 7) /* the seven bad calls above */
		check("bad calls counted", KMEM_EINVAL, KMEM_OK);
}

int main(void)
{
	/* 1. The arena, and the buddy over it (its metadata apart). */
	void *arena = aligned_alloc(ARENA, ARENA);
	struct buddy_region rg = { (uintptr_t)arena, ARENA };
	size_t bneed = buddy_meta_size(&rg, 1, NCPUS);
	void *bmeta = aligned_alloc(64, (bneed + 63) & ~(size_t)63);
	if (!arena || !bmeta ||
	    buddy_zone_init(&zone, bmeta, bneed, &rg, 1, NCPUS) != BUDDY_OK)
		return 1;

	/* 3. kmem over the buddy: metadata, then a cache of our own. */
	struct kmem_config cfg = {
		.base = (uintptr_t)arena,
		.size = ARENA,
		.ncpus = NCPUS,
		.max_caches = KMEM_KMALLOC_CLASSES + 1,
		.empty_max = 1, /* empty slabs a cache keeps */
		.source = { src_alloc, src_free, NULL },
	};
	size_t kneed = kmem_meta_size(&cfg);
	void *kmeta = aligned_alloc(64, (kneed + 63) & ~(size_t)63);
	check("kmem_init", kmem_init(&km, kmeta, kneed, &cfg), KMEM_OK);
	check("kmem_cache_create",
	      kmem_cache_create(km, "conn", sizeof(struct conn), 0, conn_ctor,
				NULL, NULL, &conns),
	      KMEM_OK);

	/* 4. Two CPUs at once. */
	pthread_t t[NCPUS];
	pthread_barrier_init(&phase, NULL, NCPUS);
	for (unsigned i = 0; i < NCPUS; i++)
		pthread_create(&t[i], NULL, cpu_work, (void *)(uintptr_t)i);
	for (unsigned i = 0; i < NCPUS; i++)
		pthread_join(t[i], NULL);
	lf_platform_user_set_cpu(0); /* this thread is CPU 0 from here */
	bad_frees();

	/* 6. Everything is free, but slabs and magazines keep pages. */
	struct kmem_stats ks;
	kmem_stats(km, &ks);
	uint64_t held = ks.pages;
	size_t back = kmem_reclaim(km, 0, true);
	kmem_stats(km, &ks);
	if (held == 0 || back != held || ks.pages != 0 || kmem_check(km) != 0)
		check("reclaim gives every page back", KMEM_EBUSY, KMEM_OK);

	/* 5. ENOMEM: 1 MiB blocks until none is left; every MiB must come. */
	static void *mb[ARENA >> 20];
	unsigned n = 0;
	int rc;
	while ((rc = kmalloc(km, 0, 1u << 20, &mb[n])) == KMEM_OK)
		if (++n == ARENA >> 20)
			break;
	check("the arena in 1 MiB blocks", n == ARENA >> 20 ? 0 : rc, 0);
	void *none;
	check("one more", kmalloc(km, 0, 1u << 20, &none), KMEM_ENOMEM);
	while (n > 0)
		check("kfree", kfree(km, 0, mb[--n]), KMEM_OK);

	/* The end: the cache gone, every frame back in the buddy. */
	if (refused() != 7)
		check("bad calls counted", KMEM_EINVAL, KMEM_OK);
	check("kmem_cache_destroy", kmem_cache_destroy(conns, 0), KMEM_OK);
	struct buddy_stats bs;
	buddy_zone_drain_all(buddy_zone_cpu(zone, 0));
	buddy_zone_stats(zone, &bs);
	if (bs.free_frames != bs.total_frames ||
	    buddy_zone_check(zone, true, NULL) != 0)
		check("every frame back in the buddy", KMEM_EBUSY, KMEM_OK);
	printf("kmem_example: %d CPUs, %u objects and %u kmalloc blocks each; "
	       "%" PRIu64
	       " pages held before the reclaim, 0 after; 7 bad calls refused\n",
	       NCPUS, NOBJ, NOBJ, held);
	free(kmeta);
	free(bmeta);
	free(arena);
	return 0;
}
