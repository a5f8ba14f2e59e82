/*
 * kmem.h: an object allocator with per-CPU magazines over a page source
 * (Bonwick, "The Slab Allocator", USENIX Summer 1994; Bonwick and Adams,
 * "Magazines and Vmem", USENIX 2001).
 *
 * Three layers, top to bottom:
 *
 *   CPU layer   per cache and CPU, a loaded and a previous magazine (arrays
 *               of free objects). A hit (loaded has a round to give, or room
 *               for one) writes the CPU's own line, the round and the
 *               object's bufctl word, never the object; the only atomic
 *               read-modify-write is the free's CAS of that word (below:
 *               the price of refusing two racing frees, docs/design.md
 *               4.4). The owner brackets its hit with the
 *               asymmetric exclusion of buddy_cache.c, testing a gate that a
 *               drainer closes, so that a CPU that runs out of memory can
 *               empty every other CPU's magazines (no memory stranded).
 *   depot       per cache, full and empty magazines on two lock-free stacks
 *               (lockfree/lf_stack.h) over one pool of magazines. A CPU
 *               whose two magazines are both empty (alloc) or full (free)
 *               exchanges one with the depot. The magazine size grows when
 *               depot exchanges see contention (another exchange on the
 *               same stack during theirs), or when one CPU exchanges in one
 *               direction many times in a row.
 *   slab layer  per cache, slabs of 2^k pages from the page source; a
 *               32-bit bufctl word per object in the slab's header links
 *               the free objects (or names the round an object is in, or
 *               marks it handed out);
 *               slabs on empty/partial/full lists under the cache's lock
 *               (taken once per magazine moved, never on a hit). Empty
 *               slabs beyond the cache's watermark go back to the source at
 *               once; kmem_reclaim() gives back every empty slab.
 *
 * Objects are constructed once when their slab is made and destroyed when
 * it is given back: a cache with a constructor returns constructed objects
 * and takes them back constructed. kmalloc()/kfree() serve sizes of 8 bytes
 * to KMEM_KMALLOC_MAX (half a page) from size-class caches, larger sizes as
 * whole 2^order page blocks of the source.
 *
 * The page source is two callbacks (struct kmem_source) over one address
 * range [base, base + size) given at init; kmem keeps one word per page of
 * it (the page map: which slab or large block a page belongs to), so that
 * a free finds its slab, and a pointer no cache handed out is told apart
 * from an object, in O(1). kmem knows nothing else of the source (the buddy
 * in the kernel, an arena in the tests).
 *
 * Bad input: each class has its own error code, is counted, and changes
 * nothing: a pointer outside every slab and large block (EFOREIGN), an
 * object of another cache (EWRONG), an object already free: in a magazine,
 * in the depot, on its slab's list, or in a slab given back (EDOUBLE), a
 * pointer inside an object (EINTERIOR). The double-free check reads kmem's
 * own metadata, never the object: an object's bufctl word says it is on
 * its slab's free list, names the magazine round it is in, or says it is
 * handed out (every allocation writes that). So it is exact whatever the
 * caller writes into its objects. Two frees of one object that race
 * (neither finds it free yet) are one double free too: the free claims
 * the object by a CAS of its word from "handed out", so exactly one
 * succeeds and the other returns EDOUBLE, changing nothing; the word
 * leaves "handed out" only by such a claim, so the claim is exact (no
 * window of reuse). That CAS is an atomic read-modify-write on the free's
 * hit: no free that refuses a racing second free can do without one or a
 * store-load fence (docs/design.md 4.4; its cost measured in 4.5).
 * Debug builds (LF_DEBUG: the asan preset) add a red zone after every
 * object, checked on free, and poison free objects (caches without a
 * constructor), checked on allocation: KMEM_ECORRUPT, the object set aside.
 *
 * Example: examples/kmem_example.c (kmem over the buddy as page source,
 * a cache with a constructor, kmalloc, per-CPU use with remote frees, the
 * error codes, ENOMEM and reclaim).
 *
 * Freestanding: <stdint.h>, <stddef.h>, <stdbool.h> and lockfree/.
 *
 * Synchronization table: every call may run at the same time as any other
 * on the same instance, with these exceptions:
 *   kmem_init              before anything else;
 *   a CPU number           used by one thread at a time (the CPU, or the
 *                          userspace thread playing it); others only drain
 *                          its magazines under its exclusion;
 *   kmem_cache_destroy     with no call on that cache in flight;
 *   kmem_check             at quiescence (tests).
 * Lock order: CPU exclusion, then cache lock, then (calls out) the page
 * source. The source must not call back into kmem. Cache create/destroy
 * take the instance lock, alone.
 *
 * The kernel contract. Every call may run with interrupts disabled; none
 * sleeps. Interrupt context needs a CPU number of its own (as with the
 * buddy). Preemption off around calls on a CPU number.
 */
#ifndef KMEM_H
#define KMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_atomic.h"
#include "lf_platform.h"
#include "lf_stack.h"

#define KMEM_PAGE_SHIFT 12
#define KMEM_PAGE_SIZE ((uintptr_t)1 << KMEM_PAGE_SHIFT)
#define KMEM_SLAB_MAX_ORDER 3   /* slabs of 1 to 8 pages */
#define KMEM_LARGE_MAX_ORDER 16 /* kmalloc above half a page: up to 256 MiB */
#define KMEM_KMALLOC_MIN 8
#define KMEM_KMALLOC_MAX (KMEM_PAGE_SIZE / 2)
#define KMEM_KMALLOC_CLASSES 15 /* 8 16 32 48 64 96 ... 1536 2048 */
#define KMEM_MAG_MIN 64         /* rounds of a magazine at first */
#define KMEM_MAG_MAX 128        /* rounds at most, after growth */
#define KMEM_MAG_GROW_AT 64     /* contended depot exchanges before a growth */
#define KMEM_MAG_BURST 8 /* one CPU's one-way exchanges before a growth */
#define KMEM_NAME_MAX 24
#define KMEM_CACHES_MAX 4096 /* cache slots at most (max_caches) */
#define KMEM_SIZE_MAX ((uintptr_t)1 << 46) /* the range at most (size) */

enum kmem_err {
	KMEM_OK = 0,
	KMEM_ENOMEM = -1,    /* no object: the source is exhausted */
	KMEM_EINVAL = -2,    /* bad argument: size, alignment, CPU, NULL */
	KMEM_EFOREIGN = -3,  /* free of a pointer that no cache handed out */
	KMEM_EWRONG = -4,    /* free of an object of another cache */
	KMEM_EDOUBLE = -5,   /* free of an object that is already free */
	KMEM_EINTERIOR = -6, /* free of a pointer inside an object */
	KMEM_EBUSY = -7,     /* destroy of a cache with objects in use */
	KMEM_ENOSPC = -8,    /* init: metadata too small; create: no slot */
	KMEM_ESOURCE = -9,   /* the page source failed or lied */
	KMEM_ECORRUPT = -10, /* debug: red zone or poison overwritten */
};
#define KMEM_NERR 11 /* -KMEM_ECORRUPT + 1: statistics index by -err */

/* Name of an error code ("ENOMEM"), "?" for an unknown one. */
const char *kmem_strerror(int err);

/*
 * The page source. alloc gives 2^order contiguous pages inside the range
 * given at init, page-aligned (not necessarily aligned to their size), and
 * returns 0, KMEM_ENOMEM when it has none, or another negative on failure;
 * free takes them back (same order). cpu is the kmem caller's CPU number.
 */
struct kmem_source {
	int (*alloc)(void *arg, unsigned cpu, unsigned order, uintptr_t *addr);
	void (*free)(void *arg, unsigned cpu, uintptr_t addr, unsigned order);
	void *arg;
};

struct kmem_config {
	uintptr_t base;      /* the range the source allocates from, */
	uintptr_t size;      /* page-aligned, at most KMEM_SIZE_MAX */
	unsigned ncpus;      /* CPU numbers 0 .. ncpus - 1 */
	unsigned max_caches; /* cache slots, kmalloc's 15 included; at most
			      * KMEM_CACHES_MAX */
	unsigned nmags;      /* magazines in the pool (0: 4 per cache+CPU) */
	unsigned empty_max;  /* empty slabs a cache keeps (the watermark) */
	unsigned mag_rounds; /* rounds of a magazine at first (0: MAG_MIN) */
	struct kmem_source source;
};

struct kmem;
struct kmem_cache;

/* Bytes of metadata kmem_init() needs; 0 for an invalid configuration. */
size_t kmem_meta_size(const struct kmem_config *cfg);

/* Set up an instance in meta (64-byte aligned) with the kmalloc caches. */
int kmem_init(struct kmem **kp, void *meta, size_t meta_size,
	      const struct kmem_config *cfg);

/*
 * Create a cache of objects of size bytes aligned to align (a power of two
 * up to a page; 0 means 8). ctor runs on every object when its slab is made,
 * dtor when the slab is given back (either may be NULL). name is copied.
 */
int kmem_cache_create(struct kmem *k, const char *name, size_t size,
		      size_t align, void (*ctor)(void *obj, void *arg),
		      void (*dtor)(void *obj, void *arg), void *arg,
		      struct kmem_cache **cp);

/* Destroy an idle cache: KMEM_EBUSY (nothing changed) if objects are out. */
int kmem_cache_destroy(struct kmem_cache *c, unsigned cpu);

/*
 * An allocation's result: the object, or NULL and an error code (EINVAL,
 * ENOMEM, ESOURCE, ECORRUPT). kmem_cache_get() returns it in two
 * registers; kmem_cache_alloc() stores the object through obj in its
 * caller, where the compiler keeps it in a register when obj is a local.
 */
struct kmem_got {
	void *obj;
	intptr_t err; /* a full register: no padding to keep */
};
struct kmem_got kmem_cache_get(struct kmem_cache *c, unsigned cpu);
/* kmem_cache_alloc() out of line: the same checks, results and counts. */
int kmem_cache_alloc_out(struct kmem_cache *c, unsigned cpu, void **obj);

/* g's code; on success its object stored in *obj, else *obj unchanged. */
static inline int kmem_got_put(struct kmem_got g, void **obj)
{
	int err = (int)g.err; /* 0 or a KMEM_E* code: exact */
	if (LF_LIKELY(err == 0))
		*obj = g.obj;
	return err;
}

/* 0 and the object in *obj, or an error code and *obj unchanged. */
static inline int kmem_cache_alloc(struct kmem_cache *c, unsigned cpu,
				   void **obj)
{
	if (LF_UNLIKELY(!obj))
		return kmem_cache_alloc_out(c, cpu, obj); /* EINVAL, counted */
	return kmem_got_put(kmem_cache_get(c, cpu), obj);
}
int kmem_cache_free(struct kmem_cache *c, unsigned cpu, void *obj);

int kmalloc(struct kmem *k, unsigned cpu, size_t size, void **p);
int kfree(struct kmem *k, unsigned cpu, void *p);
/* The usable size of a kmalloc block (its class), 0 if p is not one. */
size_t kmem_ksize(struct kmem *k, const void *p);

/* Empty CPU cpu's magazines of every cache into the slabs. */
void kmem_cpu_drain(struct kmem *k, unsigned cpu);
/*
 * Reclaim: empty every depot (and, if all_cpus, every CPU's magazines)
 * into the slabs and give every empty slab back to the source. Returns the
 * pages given back: the empty slabs reaped at the end and those the
 * flushes gave back on the way (past the watermark of empty slabs).
 */
size_t kmem_reclaim(struct kmem *k, unsigned cpu, bool all_cpus);

/* Per-cache statistics (a snapshot, exact at quiescence). */
struct kmem_cache_stats {
	const char *name;
	size_t size;         /* object size asked for */
	size_t stride;       /* bytes per object in the slab */
	unsigned slab_pages; /* pages per slab */
	unsigned slab_objs;  /* objects per slab */
	unsigned mag_size;   /* rounds of new magazines */
	uint64_t inuse;      /* objects handed out */
	uint64_t in_mags;    /* objects in magazines: CPUs' and depot's */
	uint64_t in_slabs;   /* free objects on slab lists */
	uint64_t slabs;      /* slabs held */
	uint64_t allocs, frees;
	uint64_t depot_gets;      /* full magazines taken from the depot */
	uint64_t depot_puts;      /* full magazines given to it */
	uint64_t depot_contended; /* exchanges that saw another one */
	uint64_t slab_fills;      /* magazines filled from the slab layer */
	uint64_t grows;           /* slabs made */
	uint64_t reclaims;        /* slabs given back */
	uint64_t drains;          /* CPU magazine pairs emptied by a drain */
	uint64_t failed;          /* allocations that returned ENOMEM/ESOURCE */
	uint64_t corrupt;  /* objects set aside for a broken red zone/poison */
	uint64_t rejected; /* frees refused, all classes */
	uint64_t rejected_by[KMEM_NERR];
};
void kmem_cache_stats(struct kmem_cache *c, struct kmem_cache_stats *st);

/* Instance-wide statistics. */
struct kmem_stats {
	uint64_t pages;       /* pages held from the source: slabs + large */
	uint64_t large_pages; /* of which kmalloc's large blocks */
	uint64_t large_allocs, large_frees;
	uint64_t caches;    /* live caches */
	uint64_t mags_free; /* magazines in the pool */
	uint64_t rejected;  /* kfree()s refused before a cache was known */
	uint64_t rejected_by[KMEM_NERR];
};
void kmem_stats(struct kmem *k, struct kmem_stats *st);

/* The cache of kmalloc class i (tests, statistics); NULL past the last. */
struct kmem_cache *kmem_kmalloc_cache(struct kmem *k, unsigned i);
/* The cache owning object p, or NULL (tests). */
struct kmem_cache *kmem_cache_of(struct kmem *k, const void *p);

/*
 * Check every invariant (K1-K8, docs/design.md 4.2) at quiescence; 0 or the
 * number of the first invariant found broken. Tests only.
 */
int kmem_check(struct kmem *k);

#endif /* KMEM_H */
