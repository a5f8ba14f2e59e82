/*
 * kmem_i.h: kmem's internal types, shared by kmem.c and kmem_check.c (and
 * read by white-box tests). Not part of the API: include kmem.h.
 *
 * Field tags: (i) set at init or creation, then read-only; (a) atomic, any
 * context; (o) written only by the owning CPU (atomic where snapshots read
 * it); (x) the owner inside its section, or a drainer holding the CPU's
 * lock (kmem.c: the fast paths, kmem_cpu_lock, kmem_seize); (l) under the
 * cache's lock; (k) under the instance lock.
 */
#ifndef KMEM_I_H
#define KMEM_I_H

#include "kmem.h"
#include "lf_spin.h"

#define KMEM_NIL16 0xffffu

/*
 * Page map entries: a tag below 2^12, or a slab's: its offset in the range
 * (s - base, below 2^46) plus its cache's key (slot + 1, 1 to 2^16 - 1) in
 * the top 16 bits. A free of a into cache c computes
 *     off = a - e + (key(c) << 48) - base - hdr(c)        (mod 2^64)
 * which is a's offset from the first object of its slab when e is a slab
 * of c, and at least 2^48 - 2^13 (far above any slab's span) when e is a
 * tag or a slab of another cache, for any a inside the range (a - base
 * below 2^46, a within 2^15 of its slab): so one compare, off < span(c),
 * checks the cache, the tags, the header and the tail, without reading the
 * slab's header (kmem_free_ok() below).
 */
#define KMEM_PM_KEY_SHIFT 48
#define KMEM_PM_OFFS (((uintptr_t)1 << KMEM_PM_KEY_SHIFT) - 1)
_Static_assert(sizeof(uintptr_t) == 8, "the page map's keys need 64 bits");
_Static_assert(KMEM_CACHES_MAX < (1u << (64 - KMEM_PM_KEY_SHIFT)) - 1,
	       "every cache slot's key (slot + 1) fits in the top bits");
_Static_assert(KMEM_SIZE_MAX <= (uintptr_t)1 << 46,
	       "a range offset stays clear of the keys, with a margin");
#define KMEM_PM_NONE ((uintptr_t)0)  /* never handed out by kmem */
#define KMEM_PM_TOMB ((uintptr_t)1)  /* was kmem's, given back */
#define KMEM_PM_LARGE ((uintptr_t)2) /* head of a large block: | order << 3 */
#define KMEM_PM_TAIL ((uintptr_t)3)  /* inside a large block */
#define KMEM_PM_TAGS ((uintptr_t)7)

/* Debug layout: a red zone after the object, free objects poisoned. */
#define KMEM_RZ_BYTES 16
#define KMEM_RZ_BYTE 0xbb
#define KMEM_POISON_BYTE 0x6b

/*
 * A magazine. A round is named by its byte offset from the instance's
 * magazine array (k->mags): the name a free object's bufctl word holds
 * (below); round[i] of m is m->first + 8i. word[i] is the bufctl word of
 * round[i]'s object, put there with it (a free, a fill), so that the
 * allocation that takes the round marks the object handed out without
 * finding its slab.
 */
struct kmem_mag {
	lf_atomic_u32 n; /* (x) rounds held; atomic for snapshots */
	uint32_t cap;    /* (x) rounds it may hold: set when taken empty */
	uint32_t first;  /* (i) the name of round[0] */
	uint32_t unused;
	lf_atomic_uptr round[KMEM_MAG_MAX]; /* (x) the free objects; atomic:
					     * snapshots and kmem_check */
	lf_atomic_u32 *word[KMEM_MAG_MAX];  /* (x) their bufctl words */
};
_Static_assert(offsetof(struct kmem_mag, word) ==
		       offsetof(struct kmem_mag, round) +
			       KMEM_MAG_MAX * sizeof(lf_atomic_uptr),
	       "a round's word slot is KMEM_MAG_MAX slots after the round");

/* The word slot of round r (kmem_round_word(r) = &m->word[i] for
 * r = &m->round[i]): the hit reaches it from top alone. */
static inline lf_atomic_u32 **kmem_round_word(lf_atomic_uptr *r)
{
	return (lf_atomic_u32 **)(void *)(r + KMEM_MAG_MAX);
}

/*
 * The bufctl word of an object (one per object, in its slab's header),
 * one of three states:
 *   KMEM_BUF_SLAB | link   on its slab's free list (link: the next free
 *                          object's index, KMEM_NIL16 at the end);
 *   a round's name         free, in that round of a magazine (a CPU's or
 *                          the depot's);
 *   KMEM_BUF_OUT           handed out (or set aside as corrupt).
 * Every allocation writes KMEM_BUF_OUT (the hit through the round's word
 * slot, above), every free claims the object by a CAS from KMEM_BUF_OUT to
 * its round's name (or, with no magazine, to a link), a fill and a drain
 * rewrite the words of the free objects they move. So a free tells a free
 * object from one handed out by the word alone, without reading the object
 * or a round (K2), and of two frees that race exactly one CAS succeeds:
 * the word leaves KMEM_BUF_OUT only by a free's claim and comes back to it
 * only by an allocation, so a claim that succeeds freed an object handed
 * out at that instant. The magazine after the pool's (k->none, of no
 * rounds) is never filled. Names stay below 2^24 (kmem_layout()).
 */
#define KMEM_BUF_SLAB 0x80000000u
#define KMEM_BUF_SEEN 0x40000000u /* kmem_check()'s walk only */
#define KMEM_BUF_OUT 0x20000000u
#define KMEM_BUF_NAMES 0x01000000u /* names are below this */
#define KMEM_BUF_LINK 0xffffu

enum kmem_list {
	KMEM_LIST_EMPTY,
	KMEM_LIST_PARTIAL,
	KMEM_LIST_FULL,
	KMEM_LISTS
};

/* At the start of every slab; the bufctl array (a word per object) follows. */
struct kmem_slab {
	struct kmem_cache *cache;      /* (i) */
	struct kmem_slab *prev, *next; /* (l) on the list named by list */
	uintptr_t base;                /* (i) first object */
	uint32_t nobj;                 /* (i) */
	uint32_t inuse;                /* (l) objects off the free list */
	uint16_t free;       /* (l) first free object, KMEM_NIL16 if none */
	uint8_t list;        /* (l) enum kmem_list */
	lf_atomic_u32 buf[]; /* bufctl words by object index (above): under
			      * the cache lock while KMEM_BUF_SLAB; a round's
			      * name: its magazine's holder; KMEM_BUF_OUT:
			      * claimed by a free's CAS */
};

/*
 * A CPU's magazines in one cache, written by its owner: the first line is
 * all a hit touches (besides the round, its word slot and the bufctl
 * word). The loaded magazine's rounds are [its round[0], top): a hit
 * moves top; the magazine's count n is stale while it is loaded, written
 * back (kmem_cpu_sync()) by whoever takes the lock to look at it or
 * change it.
 * lo and hi (the addresses of round[0] and round[cap]) are the gate of the
 * fast paths: kmem.c, kmem_cpu_aim().
 */
struct kmem_cpu {
	lf_atomic_u32 own;     /* (o) owner inside its fast section */
	lf_atomic_u32 lock;    /* (a) 1 while a drainer or the owner's slow
				* path holds the magazines */
	lf_atomic_uptr top;    /* (x) next round of loaded */
	lf_atomic_uptr lo, hi; /* (x) written, (a) read: the gate */
	struct kmem_mag *loaded, *prev; /* (x) never NULL: k->none if none */
	lf_atomic_u64 frees; /* (o) relaxed load + store, snapshots read */
	/*
	 * The second line: the slow paths' and drainers'. Allocations are not
	 * counted one by one: the rounds this CPU took from its magazines
	 * are the rounds that came into them (depot gets, fills) less those
	 * that left otherwise (depot puts, drains) plus its frees less what
	 * they hold now (kmem_cpu_taken()).
	 */
	lf_atomic_u64 rounds_in LF_CACHE_ALIGNED; /* (x) atomic: snapshots */
	lf_atomic_u64 rounds_out;                 /* (x) */
	lf_atomic_u64 depot_gets, depot_puts;     /* (o) */
	int32_t burst; /* (x) exchanges in a row in one direction: > 0 for
			* allocations, < 0 for frees (kmem_cpu_burst()) */
} LF_CACHE_ALIGNED;
_Static_assert(offsetof(struct kmem_cpu, rounds_in) == LF_CACHELINE,
	       "a CPU's magazines and hit counter: one line");

/* Write the loaded magazine's count back (the lock held, or quiescent). */
static inline void kmem_cpu_sync(struct kmem_cpu *cc)
{
	struct kmem_mag *m = cc->loaded;
	/* Relaxed, both: (x); snapshots of depot magazines read n. */
	uintptr_t t = lf_load_uptr(&cc->top, LF_RELAXED);
	lf_store_u32(
		&m->n,
		(uint32_t)((t - (uintptr_t)&m->round[0]) / sizeof(m->round[0])),
		LF_RELAXED);
}

/*
 * The rounds CPU cc took from its magazines (objects handed out, or set
 * aside as corrupt): the lock held, or quiescent (K4).
 */
static inline uint64_t kmem_cpu_taken(struct kmem_cpu *cc)
{
	struct kmem_mag *m = cc->loaded;
	/* Relaxed, all: (x) under the lock; statistics. */
	uintptr_t t = lf_load_uptr(&cc->top, LF_RELAXED);
	uint64_t now = (t - (uintptr_t)&m->round[0]) / sizeof(m->round[0]) +
		       lf_load_u32(&cc->prev->n, LF_RELAXED);
	return lf_load_u64(&cc->rounds_in, LF_RELAXED) -
	       lf_load_u64(&cc->rounds_out, LF_RELAXED) +
	       lf_load_u64(&cc->frees, LF_RELAXED) - now;
}

/* Close the gate: both fast tests fail (the lock held). */
static inline void kmem_gate_close(struct kmem_cpu *cc)
{
	/* Relaxed, both: the heavy barrier (kmem_seize()) orders them before
	 * the owner's next test, or the gate is never opened (no barrier). */
	lf_store_uptr(&cc->lo, UINTPTR_MAX, LF_RELAXED);
	lf_store_uptr(&cc->hi, 0, LF_RELAXED);
}

struct kmem_cache {
	/*
	 * The first line, and recip, span, ncpus and names after it (the
	 * free's stride check and magazine names): what the fast paths read,
	 * copies of the instance's (i) fields among them, so that a hit reads
	 * these, the CPU's line and the slab's, and no line of the instance.
	 */
	struct kmem_cpu *cpu;    /* (i) ncpus of them */
	lf_atomic_uptr *pagemap; /* (i) = k->pagemap */
	uintptr_t mags;          /* (i) = k->mags: rounds by name */
	uintptr_t base, range;   /* (i) = k->base, k->size */
	uintptr_t pm_key;        /* (i) slot + 1 << 48: in its slabs' entries */
	uintptr_t pm_bias;       /* (i) pm_key - base - hdr: a - e + pm_bias is
				  * the object offset (see the page map above) */
	uintptr_t bc_bias; /* (i) base - pm_key + the bufctl array's offset:
			    * e + bc_bias is the bufctl array of e's slab */
	uint64_t recip;    /* (i) ceil(2^64 / stride): division by multiply */
	uintptr_t span;    /* (i) nobj * stride: the objects of a slab */
	uint32_t ncpus;    /* (i) = k->ncpus */
	uint32_t names;    /* (i) = k->names */
	bool kmalloc;      /* (i) a kmalloc class: kfree() takes its objects */
	struct kmem *k;    /* (i) */
	char name[KMEM_NAME_MAX];   /* (i) */
	size_t size, align, stride; /* (i) */
	uint32_t rz_end; /* (i) debug: the red zone is [size, rz_end) */
	uint32_t nobj, order, hdr;    /* (i) per slab: objects, 2^order pages,
				       * offset of the first object */
	void (*ctor)(void *, void *); /* (i) */
	void (*dtor)(void *, void *); /* (i) */
	void *arg;                    /* (i) */
	bool poison;                  /* (i) debug and no constructor */
	lf_atomic_u32 live; /* (k) written; read acquire by reclaim walks */

	/* The depot: lock-free. */
	struct lf_stack full LF_CACHE_ALIGNED; /* (a) full magazines */
	struct lf_stack empty;                 /* (a) empty magazines */
	lf_atomic_u32 mag_size;                /* (a) rounds of new magazines */
	lf_atomic_u64 contended;               /* (a) */

	/* The slab layer: under lock. */
	struct lf_spin lock LF_CACHE_ALIGNED;    /* (a) the cache lock */
	struct kmem_slab *list[KMEM_LISTS];      /* (l) */
	lf_atomic_u64 nslabs, nempty, slab_free; /* (l) written, snapshots */
	lf_atomic_u64 grows, reclaims, drains, fills; /* (a) */
	lf_atomic_u64 failed, corrupt;                /* (a) */
	lf_atomic_u64 rejected_by[KMEM_NERR];         /* (a) */
};

struct kmem {
	uintptr_t base, size, npages; /* (i) the source's range */
	unsigned ncpus, max_caches, nmags, empty_max; /* (i) */
	unsigned mag_init;      /* (i) rounds of a cache's magazines at first */
	struct kmem_source src; /* (i) */
	bool asym; /* (i) a heavy barrier exists: asymmetric sections */
	lf_atomic_uptr *pagemap;   /* (i) array; entries (a) */
	struct kmem_mag *mags;     /* (i) the pool's magazines */
	uint32_t names;            /* (i) round names are below: the bytes
				    * of the pool and of none */
	lf_atomic_u32 *mag_links;  /* (i) array; entries by lf_stack */
	struct kmem_cache *caches; /* (i) max_caches slots */
	struct kmem_cpu *cpus;     /* (i) max_caches * ncpus */
	struct kmem_mag *none;     /* (i) = mags + nmags: the magazine of a CPU
				    * with none, never filled (above) */
	struct kmem_cache *kmalloc[KMEM_KMALLOC_CLASSES]; /* (i) */
	uint8_t class_of[KMEM_KMALLOC_MAX / 8 +
			 1];                       /* (i) (size+7)/8 -> class */
	struct lf_stack mag_pool LF_CACHE_ALIGNED; /* (a) unused magazines */
	struct lf_spin lock; /* (a) the instance lock: create/destroy,
			      * reclaim walks */
	lf_atomic_u64 pages, large_pages, large_allocs, large_frees; /* (a) */
	lf_atomic_u64 rejected_by[KMEM_NERR];                        /* (a) */
};

/* The round of instance k named name (a bufctl word below k->names). */
static inline lf_atomic_uptr *kmem_round(uintptr_t mags, uint32_t name)
{
	return (lf_atomic_uptr *)(mags + name);
}

/* The list a slab's state calls for (K3). */
static inline enum kmem_list kmem_list_for(const struct kmem_slab *s)
{
	if (s->inuse == 0)
		return KMEM_LIST_EMPTY;
	return s->free == KMEM_NIL16 ? KMEM_LIST_FULL : KMEM_LIST_PARTIAL;
}

/* ceil(2^64 / d) for a stride d >= 2: kmem_div(), kmem_on_stride(). */
static inline uint64_t kmem_recip(uint64_t d)
{
	return ~(uint64_t)0 / d + 1;
}

/* Object index of offset off in a slab (exact for off < 2^32). */
static inline uint64_t kmem_div(const struct kmem_cache *c, uint64_t off)
{
	return (uint64_t)(((unsigned __int128)off * c->recip) >> 64);
}

/*
 * Is off a multiple of the stride? For off < 2^32 exactly when the low 64
 * bits of off * ceil(2^64 / stride) are below ceil(2^64 / stride) (Lemire,
 * Kaser and Kurz, "Faster remainder by direct computation", 2019); the
 * high 64 bits are the object index (kmem_div()): one multiply for both.
 */
static inline bool kmem_on_stride(const struct kmem_cache *c, uint64_t off,
				  uint64_t *idx)
{
	unsigned __int128 q = (unsigned __int128)off * c->recip;
	*idx = (uint64_t)(q >> 64);
	return (uint64_t)q < c->recip;
}

/* Is an entry a slab's (an offset and a key), not a tag? */
static inline bool kmem_pm_is_slab(uintptr_t e)
{
	return (e >> KMEM_PM_KEY_SHIFT) != 0;
}

/* The page map entry of slab s of cache c. */
static inline uintptr_t kmem_pm_slab(const struct kmem_cache *c,
				     const struct kmem_slab *s)
{
	return ((uintptr_t)s - c->base) + c->pm_key;
}

/* The slab of a slab entry of instance k (kmem_pm_is_slab(e)). */
static inline struct kmem_slab *kmem_pm_slab_at(const struct kmem *k,
						uintptr_t e)
{
	return (struct kmem_slab *)(k->base + (e & KMEM_PM_OFFS));
}

static inline void *kmem_obj(const struct kmem_cache *c,
			     const struct kmem_slab *s, unsigned i)
{
	return (void *)(s->base + (uintptr_t)i * c->stride);
}

static inline struct kmem_slab *kmem_slab_of(const struct kmem *k,
					     const void *p)
{
	uintptr_t a = (uintptr_t)p;
	if (a - k->base >= k->size)
		return NULL;
	/* Acquire: pairs with the release in kmem_slab_map(). */
	uintptr_t e = lf_load_uptr(
		&k->pagemap[(a - k->base) >> KMEM_PAGE_SHIFT], LF_ACQUIRE);
	return kmem_pm_is_slab(e) ? kmem_pm_slab_at(k, e) : NULL;
}

/*
 * The free's fast check, on a's page map entry e alone (no slab header
 * read; a inside the range): e is a slab of c and a an object start in it
 * (the page map, above). True exactly when kmem_obj_find() finds a in a
 * slab of c (test_kmem checks this address by address); false sends the
 * free to that full classification. On true, *bc is a's bufctl word.
 */
static inline __attribute__((always_inline)) bool
kmem_free_ok(const struct kmem_cache *c, uintptr_t a, uintptr_t e,
	     lf_atomic_u32 **bc)
{
	uintptr_t off = a - e + c->pm_bias; /* from the slab's first object */
	uint64_t i;
	if (off >= c->span || !kmem_on_stride(c, off, &i))
		return false;
	*bc = (lf_atomic_u32 *)(e + c->bc_bias) + i;
	return true;
}

/*
 * Is p an object of a slab? 0 and its slab in *sp (the cache is for the
 * caller to judge), or EFOREIGN (outside every slab and block: the range,
 * a page never handed out, a slab's header or tail), EDOUBLE (a page given
 * back), EWRONG (a large block), EINTERIOR (inside an object or a block).
 */
int kmem_obj_find(struct kmem *k, const void *p, struct kmem_slab **sp);

#endif /* KMEM_I_H */
