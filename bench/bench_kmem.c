/*
 * bench_kmem.c: the object allocator benchmark. kmem/ (through a cache and
 * through kmalloc) against a locked slab allocator (one spinlock per size
 * class, free lists carved from pages: the classic single-lock slab, the
 * baseline below magazines) and against the general-purpose allocators
 * glibc malloc, jemalloc, mimalloc and tcmalloc, through one malloc-shaped
 * interface, in the same program under the same harness (bench_harness.c).
 *
 * The general-purpose allocators are loaded with dlopen(RTLD_LOCAL), so
 * that each keeps its own malloc and none replaces the program's (glibc
 * stays glibc). jemalloc's library uses initial-exec TLS, which dlopen
 * refuses without spare static TLS: the program re-executes itself once
 * with GLIBC_TUNABLES=glibc.rtld.optional_static_tls set. A library that
 * is not installed is skipped with a message, never a failure.
 *
 * Workloads (one op in brackets):
 *   pair        alloc + free of one 64-byte object [one pair]
 *   threadtest  each thread allocates 100 objects of 64 bytes, then frees
 *               them [one object]
 *   prodcons    thread 2i allocates 64-byte objects into an SPSC ring,
 *               thread 2i+1 frees them: every free remote [one object]; a
 *               thread without a partner fills its ring then empties it
 *   falseshare  thread 2i allocates a 16-byte object, writes it 32 times,
 *               hands it to 2i+1, which writes it 32 times and frees it
 *               [one object]
 * After the table: memory overhead (bytes each allocator holds from its
 * page source or the OS per byte in use, after a mixed fill with half the
 * objects freed), and the targets of the issue, met or NOT met.
 *
 * Usage: bench_kmem [--csv PATH] [--seconds S] [--repeats R]
 *                   [--threads-max N] [--quick]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "kmem.h"
#include "kmem_src.h"
#include "lf_spin.h"
#include "platform_user.h"

#define KB_RING 1024
#define KB_PUBLISH 16
#define KB_TT_BATCH 100
#define KB_FS_WRITES 32
#define KB_ARENA_PAGES (1u << 16) /* 256 MiB of address space */

/* The targets (bench/README.md). */
#define KB_PAIR_NS 8.0  /* pair, kmem_cache, 1 thread, cpu ns */
#define KB_TT_RATIO 1.2 /* threadtest: kmem within 1.2x of the fastest */

enum kb_work { KB_PAIR, KB_TT, KB_PC, KB_FS, KB_NWORK };
enum kb_alloc {
	KB_KCACHE,
	KB_KMALLOC,
	KB_SLAB,
	KB_GLIBC,
	KB_JE,
	KB_MI,
	KB_TC,
	KB_NALLOC
};
static const char *const kb_work_name[KB_NWORK] = {
	"pair",
	"threadtest",
	"prodcons",
	"falseshare",
};
static const char *const kb_alloc_name[KB_NALLOC] = {
	"kmem_cache", "kmalloc",  "locked_slab", "glibc",
	"jemalloc",   "mimalloc", "tcmalloc",
};
static const size_t kb_size[KB_NWORK] = { 64, 64, 64, 16 };

/* ---- the dlopen'ed allocators ---- */

struct kb_lib {
	const char *file, *malloc_sym, *free_sym, *pkg;
	void *h;
	void *(*malloc)(size_t);
	void (*free)(void *);
};
static struct kb_lib kb_libs[KB_NALLOC] = {
	[KB_JE] = { "libjemalloc.so.2", "malloc", "free", "libjemalloc-dev" },
	[KB_MI] = { "libmimalloc.so.2", "mi_malloc", "mi_free",
		    "libmimalloc-dev" },
	[KB_TC] = { "libtcmalloc_minimal.so.4", "tc_malloc", "tc_free",
		    "libgoogle-perftools-dev" },
};
static char kb_missing[KB_NALLOC][160];

static void kb_libs_load(void)
{
	if (bench_under_sanitizer())
		return;
	for (int a = KB_JE; a <= KB_TC; a++) {
		struct kb_lib *l = &kb_libs[a];
		l->h = dlopen(l->file, RTLD_NOW | RTLD_LOCAL);
		if (l->h) {
			l->malloc =
				(void *(*)(size_t))dlsym(l->h, l->malloc_sym);
			l->free = (void (*)(void *))dlsym(l->h, l->free_sym);
		}
		if (!l->h || !l->malloc || !l->free) {
			snprintf(kb_missing[a], sizeof(kb_missing[a]),
				 "%s not loadable (install %s): %s", l->file,
				 l->pkg, dlerror());
			fprintf(stderr, "bench_kmem: skipping %s: %s\n",
				kb_alloc_name[a], kb_missing[a]);
			l->h = NULL;
		}
	}
}

/* ---- the locked slab baseline ---- */

/*
 * One spinlock per size class over a free list of objects; a class with
 * none carves a page from the same arena source as kmem. A page map (one
 * byte per arena page: the class) finds an object's class on free.
 */
struct kb_slab_class {
	struct lf_spin lock LF_CACHE_ALIGNED; /* (a) the class lock */
	void *free; /* (l) objects linked through their first word */
	size_t size;
};
static struct {
	struct ksrc src;
	struct kb_slab_class cls[4];
	uint8_t *cls_of; /* per arena page */
	lf_atomic_u64 pages;
} kb_slab;

static unsigned kb_slab_class_of(size_t size)
{
	return size <= 16 ? 0 : size <= 64 ? 1 : size <= 256 ? 2 : 3;
}

static void *kb_slab_alloc(size_t size)
{
	unsigned ci = kb_slab_class_of(size);
	struct kb_slab_class *c = &kb_slab.cls[ci];
	lf_spin_lock(&c->lock);
	if (!c->free) {
		uintptr_t a;
		if (ksrc_alloc(&kb_slab.src, 0, 0, &a) != 0) {
			lf_spin_unlock(&c->lock);
			return NULL;
		}
		kb_slab.cls_of[(a - kb_slab.src.base) / KMEM_PAGE_SIZE] =
			(uint8_t)ci;
		/* Relaxed: statistics. */
		lf_fetch_add_u64(&kb_slab.pages, 1, LF_RELAXED);
		for (size_t off = 0; off + c->size <= KMEM_PAGE_SIZE;
		     off += c->size) {
			*(void **)(a + off) = c->free;
			c->free = (void *)(a + off);
		}
	}
	void *p = c->free;
	c->free = *(void **)p;
	lf_spin_unlock(&c->lock);
	return p;
}

static void kb_slab_free(void *p)
{
	struct kb_slab_class *c =
		&kb_slab.cls[kb_slab.cls_of[((uintptr_t)p - kb_slab.src.base) /
					    KMEM_PAGE_SIZE]];
	lf_spin_lock(&c->lock);
	*(void **)p = c->free;
	c->free = p;
	lf_spin_unlock(&c->lock);
}

static int kb_slab_init(void)
{
	static const size_t sz[4] = { 16, 64, 256, 512 };
	if (ksrc_init(&kb_slab.src, KB_ARENA_PAGES) != 0)
		return -1;
	kb_slab.cls_of = calloc(KB_ARENA_PAGES, 1);
	for (int i = 0; i < 4; i++) {
		lf_spin_init(&kb_slab.cls[i].lock);
		kb_slab.cls[i].free = NULL;
		kb_slab.cls[i].size = sz[i];
	}
	lf_init_u64(&kb_slab.pages, 0);
	return kb_slab.cls_of ? 0 : -1;
}

static void kb_slab_fini(void)
{
	free(kb_slab.cls_of);
	ksrc_fini(&kb_slab.src);
}

/* ---- kmem ---- */

static struct {
	struct ksrc src;
	struct kmem *k;
	struct kmem_cache *c;
} kb_kmem;

static int kb_kmem_init(unsigned nthreads, size_t size)
{
	if (ksrc_init(&kb_kmem.src, KB_ARENA_PAGES) != 0)
		return -1;
	kb_kmem.k = ksrc_kmem(&kb_kmem.src, nthreads, 32, 2);
	if (!kb_kmem.k || kmem_cache_create(kb_kmem.k, "bench", size, 0, NULL,
					    NULL, NULL, &kb_kmem.c) != 0)
		return -1;
	return 0;
}

/* Everything freed: reclaim gives every page back and K1-K8 hold. */
static int kb_kmem_fini(void)
{
	int rc = 0;
	struct kmem_stats st;
	if (kmem_cache_destroy(kb_kmem.c, 0) != 0)
		rc = -1;
	kmem_reclaim(kb_kmem.k, 0, true);
	kmem_stats(kb_kmem.k, &st);
	if (kmem_check(kb_kmem.k) != 0 || st.pages != 0 ||
	    ksrc_held(&kb_kmem.src) != 0) {
		fprintf(stderr,
			"bench_kmem: kmem check failed after the run "
			"(check %d, pages %llu)\n",
			kmem_check(kb_kmem.k), (unsigned long long)st.pages);
		rc = -1;
	}
	free(kb_kmem.k);
	ksrc_fini(&kb_kmem.src);
	return rc;
}

/* ---- one malloc-shaped interface ---- */

static struct {
	enum kb_work work;
	enum kb_alloc alloc;
	unsigned nthreads;
	lf_atomic_u64 errors;
} kb;

static inline void *kb_get(unsigned id, size_t size)
{
	void *p = NULL;
	switch (kb.alloc) {
	case KB_KCACHE:
		if (kmem_cache_alloc(kb_kmem.c, id, &p) != 0)
			p = NULL;
		break;
	case KB_KMALLOC:
		if (kmalloc(kb_kmem.k, id, size, &p) != 0)
			p = NULL;
		break;
	case KB_SLAB:
		p = kb_slab_alloc(size);
		break;
	case KB_GLIBC:
		p = malloc(size);
		break;
	default:
		p = kb_libs[kb.alloc].malloc(size);
	}
	if (LF_UNLIKELY(!p))
		/* Relaxed: a count, read after the join. */
		lf_fetch_add_u64(&kb.errors, 1, LF_RELAXED);
	return p;
}

static inline void kb_put(unsigned id, void *p)
{
	int rc = 0;
	switch (kb.alloc) {
	case KB_KCACHE:
		rc = kmem_cache_free(kb_kmem.c, id, p);
		break;
	case KB_KMALLOC:
		rc = kfree(kb_kmem.k, id, p);
		break;
	case KB_SLAB:
		kb_slab_free(p);
		break;
	case KB_GLIBC:
		free(p);
		break;
	default:
		kb_libs[kb.alloc].free(p);
	}
	if (LF_UNLIKELY(rc != 0))
		lf_fetch_add_u64(&kb.errors, 1,
				 LF_RELAXED); /* Relaxed: count */
}

/* ---- the SPSC ring (prodcons, falseshare) ---- */

/*
 * The producer writes slot[tail % N], then publishes tail (release); the
 * consumer reads below the tail it loaded (acquire), then publishes head
 * (release), which the producer loads (acquire) before reusing slots. Each
 * side publishes every KB_PUBLISH entries and before it waits.
 */
struct kb_ring {
	lf_atomic_u64 head LF_CACHE_ALIGNED;  /* (a) consumer */
	lf_atomic_u64 tail LF_CACHE_ALIGNED;  /* (a) producer */
	lf_atomic_u32 closed;                 /* (a) producer: no more */
	void *slot[KB_RING] LF_CACHE_ALIGNED; /* ordered by head and tail */
};
static struct kb_ring kb_rings[BENCH_MAX_THREADS / 2];
static void *kb_held[BENCH_MAX_THREADS][KB_RING];

static void kb_write(void *p)
{
	volatile uint8_t *b = p;
	for (unsigned i = 0; i < KB_FS_WRITES; i++)
		b[i % kb_size[KB_FS]] = (uint8_t)i;
}

static uint64_t kb_produce(unsigned id, struct kb_ring *r,
			   const struct bench_stop *stop)
{
	uint64_t tail = 0, head = 0, published = 0;
	size_t size = kb_size[kb.work];
	do {
		for (unsigned i = 0; i < BENCH_BATCH; i++) {
			if (tail - head == KB_RING) {
				/* Release: the slots below tail; pairs with
				 * the consumer's acquire. */
				lf_store_u64(&r->tail, tail, LF_RELEASE);
				published = tail;
				/* Acquire: pairs with the consumer's release.
				 */
				head = lf_load_u64(&r->head, LF_ACQUIRE);
				if (tail - head == KB_RING) {
					lf_platform_pause();
					continue;
				}
			}
			void *p = kb_get(id, size);
			if (!p)
				continue;
			if (kb.work == KB_FS)
				kb_write(p);
			r->slot[tail % KB_RING] = p;
			if (++tail - published >= KB_PUBLISH) {
				/* Release: as above. */
				lf_store_u64(&r->tail, tail, LF_RELEASE);
				published = tail;
			}
		}
	} while (!bench_stopped(stop));
	lf_store_u64(&r->tail, tail, LF_RELEASE); /* Release: as above */
	/* Release: after the last tail; pairs with the consumer's acquire. */
	lf_store_u32(&r->closed, 1, LF_RELEASE);
	return 0; /* the consumer counts */
}

static bool kb_wait(struct kb_ring *r, uint64_t head, uint64_t *tail)
{
	/* Release: done with the slots below head. */
	lf_store_u64(&r->head, head, LF_RELEASE);
	for (;;) {
		/* Acquire: pairs with the producer's release of tail. */
		*tail = lf_load_u64(&r->tail, LF_ACQUIRE);
		if (*tail != head)
			return true;
		/* Acquire: pairs with the release of closed. */
		if (lf_load_u32(&r->closed, LF_ACQUIRE) != 0) {
			*tail = lf_load_u64(&r->tail, LF_ACQUIRE);
			return *tail != head;
		}
		lf_platform_pause();
	}
}

static uint64_t kb_consume(unsigned id, struct kb_ring *r)
{
	uint64_t head = 0, tail = 0;
	while (head != tail || kb_wait(r, head, &tail)) {
		void *p = r->slot[head % KB_RING];
		if (kb.work == KB_FS)
			kb_write(p);
		kb_put(id, p);
		if (++head % KB_PUBLISH == 0)
			/* Release: done with the slots below head. */
			lf_store_u64(&r->head, head, LF_RELEASE);
	}
	return head;
}

/* A thread without a partner: fill, then empty (writing in falseshare). */
static uint64_t kb_alone(unsigned id, unsigned batch,
			 const struct bench_stop *stop)
{
	uint64_t n = 0;
	size_t size = kb_size[kb.work];
	void **held = kb_held[id];
	do {
		for (unsigned r = 0; r < BENCH_BATCH / batch + 1; r++) {
			unsigned got = 0;
			for (unsigned j = 0; j < batch; j++)
				if ((held[got] = kb_get(id, size)) != NULL) {
					if (kb.work == KB_FS)
						kb_write(held[got]);
					got++;
				}
			for (unsigned j = 0; j < got; j++) {
				if (kb.work == KB_FS)
					kb_write(held[j]);
				kb_put(id, held[j]);
			}
			n += got;
		}
	} while (!bench_stopped(stop));
	return n;
}

static uint64_t kb_run(unsigned id, const struct bench_stop *stop)
{
	uint64_t n = 0;
	switch (kb.work) {
	case KB_PAIR:
		do {
			for (unsigned i = 0; i < BENCH_BATCH; i++) {
				void *p = kb_get(id, 64);
				if (p) {
					kb_put(id, p);
					n++;
				}
			}
		} while (!bench_stopped(stop));
		return n;
	case KB_TT:
		return kb_alone(id, KB_TT_BATCH, stop);
	default:
		if (id % 2 == 1)
			return kb_consume(id, &kb_rings[id / 2]);
		if (id + 1 < kb.nthreads)
			return kb_produce(id, &kb_rings[id / 2], stop);
		return kb_alone(id, KB_RING, stop);
	}
}

/* ---- the harness's calls ---- */

static int kb_setup(enum kb_work w, enum kb_alloc a, unsigned nthreads)
{
	kb.work = w;
	kb.alloc = a;
	kb.nthreads = nthreads;
	lf_init_u64(&kb.errors, 0);
	for (unsigned i = 0; i < BENCH_MAX_THREADS / 2; i++) {
		lf_init_u64(&kb_rings[i].head, 0);
		lf_init_u64(&kb_rings[i].tail, 0);
		lf_init_u32(&kb_rings[i].closed, 0);
	}
	if (a == KB_KCACHE || a == KB_KMALLOC)
		return kb_kmem_init(nthreads, kb_size[w]);
	if (a == KB_SLAB)
		return kb_slab_init();
	return 0;
}

static void kb_thread_init(unsigned id)
{
	lf_platform_user_set_cpu(id);
}

static void kb_thread_fini(unsigned id)
{
	(void)id;
}

static int kb_check(void)
{
	int rc = 0;
	/* Relaxed: after the join. */
	if (lf_load_u64(&kb.errors, LF_RELAXED) != 0) {
		fprintf(stderr, "bench_kmem: %s/%s: %llu failed calls\n",
			kb_work_name[kb.work], kb_alloc_name[kb.alloc],
			(unsigned long long)lf_load_u64(&kb.errors,
							LF_RELAXED));
		rc = -1;
	}
	if (kb.alloc == KB_KCACHE || kb.alloc == KB_KMALLOC)
		rc |= kb_kmem_fini();
	else if (kb.alloc == KB_SLAB)
		kb_slab_fini();
	return rc;
}

static const char *kb_skip(enum kb_alloc a)
{
	if (a >= KB_JE && bench_under_sanitizer())
		return "a sanitizer build: the other allocators are not "
		       "instrumented";
	if (a >= KB_JE && kb_libs[a].h == NULL)
		return kb_missing[a];
	return NULL;
}

#define KB_IMPL(w, a, W, A, OURS)                                              \
	static int kb_setup_##w##_##a(unsigned n)                              \
	{                                                                      \
		return kb_setup(W, A, n);                                      \
	}                                                                      \
	static const char *kb_skip_##w##_##a(unsigned n)                       \
	{                                                                      \
		(void)n;                                                       \
		return kb_skip(A);                                             \
	}                                                                      \
	static const struct bench_impl kb_##w##_##a = {                        \
		.bench = kb_work_name_##w,                                     \
		.impl = kb_alloc_name_##a,                                     \
		.ours = OURS,                                                  \
		.skip = kb_skip_##w##_##a,                                     \
		.setup = kb_setup_##w##_##a,                                   \
		.thread_init = kb_thread_init,                                 \
		.run = kb_run,                                                 \
		.thread_fini = kb_thread_fini,                                 \
		.check = kb_check,                                             \
	};

#define kb_work_name_pair "pair"
#define kb_work_name_threadtest "threadtest"
#define kb_work_name_prodcons "prodcons"
#define kb_work_name_falseshare "falseshare"
#define kb_alloc_name_kcache "kmem_cache"
#define kb_alloc_name_kmalloc "kmalloc"
#define kb_alloc_name_slab "locked_slab"
#define kb_alloc_name_glibc "glibc"
#define kb_alloc_name_je "jemalloc"
#define kb_alloc_name_mi "mimalloc"
#define kb_alloc_name_tc "tcmalloc"

#define KB_IMPLS(w, W)                                                         \
	KB_IMPL(w, kcache, W, KB_KCACHE, true)                                 \
	KB_IMPL(w, kmalloc, W, KB_KMALLOC, false)                              \
	KB_IMPL(w, slab, W, KB_SLAB, false)                                    \
	KB_IMPL(w, glibc, W, KB_GLIBC, false)                                  \
	KB_IMPL(w, je, W, KB_JE, false)                                        \
	KB_IMPL(w, mi, W, KB_MI, false)                                        \
	KB_IMPL(w, tc, W, KB_TC, false)

KB_IMPLS(pair, KB_PAIR)
KB_IMPLS(threadtest, KB_TT)
KB_IMPLS(prodcons, KB_PC)
KB_IMPLS(falseshare, KB_FS)

#define KB_LIST(w)                                                             \
	&kb_##w##_kcache, &kb_##w##_kmalloc, &kb_##w##_slab, &kb_##w##_glibc,  \
		&kb_##w##_je, &kb_##w##_mi, &kb_##w##_tc

static const struct bench_impl *const kb_impls[] = {
	KB_LIST(pair),
	KB_LIST(threadtest),
	KB_LIST(prodcons),
	KB_LIST(falseshare),
};

static void kb_header(void)
{
	printf("kmem_cache: kmem_cache_alloc/free on a cache of the size; "
	       "kmalloc: kmalloc/kfree;\n  locked_slab: one spinlock per "
	       "class (the baseline); glibc, jemalloc, mimalloc,\n  tcmalloc: "
	       "malloc/free of each (dlopen'ed, RTLD_LOCAL)\n");
	printf("pair: alloc + free of 64 B [pair]; threadtest: %d x 64 B "
	       "allocated then freed\n  [object]; prodcons: thread 2i "
	       "allocates 64 B, 2i+1 frees (SPSC ring of %d)\n  [object]; "
	       "falseshare: 16 B objects written %d times by each of two\n"
	       "  threads, freed by the second [object]\n",
	       KB_TT_BATCH, KB_RING, KB_FS_WRITES);
}

/* ---- memory overhead ---- */

static size_t kb_footprint(enum kb_alloc a)
{
	switch (a) {
	case KB_KCACHE:
	case KB_KMALLOC: {
		struct kmem_stats st;
		kmem_stats(kb_kmem.k, &st);
		return st.pages * KMEM_PAGE_SIZE;
	}
	case KB_SLAB:
		/* Relaxed: one thread. */
		return lf_load_u64(&kb_slab.pages, LF_RELAXED) * KMEM_PAGE_SIZE;
	case KB_GLIBC: {
		struct mallinfo2 mi = mallinfo2();
		return mi.arena + mi.hblkhd;
	}
	case KB_JE: {
		int (*ctl)(const char *, void *, size_t *, void *, size_t) =
			(int (*)(const char *, void *, size_t *, void *,
				 size_t))dlsym(kb_libs[KB_JE].h, "mallctl");
		uint64_t ep = 1;
		size_t v = 0, len = sizeof(v), elen = sizeof(ep);
		if (!ctl || ctl("epoch", &ep, &elen, &ep, elen) != 0 ||
		    ctl("stats.resident", &v, &len, NULL, 0) != 0)
			return 0;
		return v;
	}
	case KB_MI: {
		void (*info)(size_t *, size_t *, size_t *, size_t *, size_t *,
			     size_t *, size_t *, size_t *) =
			(void (*)(size_t *, size_t *, size_t *, size_t *,
				  size_t *, size_t *, size_t *,
				  size_t *))dlsym(kb_libs[KB_MI].h,
						  "mi_process_info");
		size_t x, commit = 0;
		if (info)
			info(&x, &x, &x, &x, &x, &commit, &x, &x);
		return commit;
	}
	case KB_TC: {
		int (*prop)(const char *, size_t *) =
			(int (*)(const char *, size_t *))dlsym(
				kb_libs[KB_TC].h,
				"MallocExtension_GetNumericProperty");
		size_t heap = 0, unmapped = 0;
		if (!prop || !prop("generic.heap_size", &heap))
			return 0;
		prop("tcmalloc.pageheap_unmapped_bytes", &unmapped);
		return heap - unmapped;
	}
	default:
		return 0;
	}
}

#define KB_MEM_N 200000

/* Fill with sizes 8-512, free every other object: held / in use. */
static void kb_mem_one(enum kb_alloc a)
{
	static void *p[KB_MEM_N];
	static size_t sz[KB_MEM_N];
	if (kb_skip(a)) {
		printf("  %-12s skipped: %s\n", kb_alloc_name[a], kb_skip(a));
		return;
	}
	if (kb_setup(KB_PAIR, a, 1) != 0)
		return;
	if (a == KB_KCACHE) { /* one size: the cache's */
		printf("  %-12s (one size: see kmalloc)\n", kb_alloc_name[a]);
		kb_check();
		return;
	}
	size_t before = kb_footprint(a), inuse = 0;
	uint64_t r = 88172645463325252ull;
	for (int i = 0; i < KB_MEM_N; i++) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		sz[i] = 8 + r % 505;
		p[i] = kb_get(0, sz[i]);
		if (p[i])
			memset(p[i], 1, sz[i]);
	}
	for (int i = 0; i < KB_MEM_N; i += 2)
		if (p[i])
			kb_put(0, p[i]);
	for (int i = 1; i < KB_MEM_N; i += 2)
		inuse += p[i] ? sz[i] : 0;
	size_t after = kb_footprint(a);
	printf("  %-12s %9.3f MiB held for %7.3f MiB in use: %.3f bytes "
	       "held per byte in use\n",
	       kb_alloc_name[a], (double)(after - before) / (1 << 20),
	       (double)inuse / (1 << 20),
	       (double)(after - before) / (double)inuse);
	for (int i = 1; i < KB_MEM_N; i += 2)
		if (p[i])
			kb_put(0, p[i]);
	kb_check();
}

static void kb_mem(void)
{
	printf("memory overhead (one thread: %d objects of 8-512 B, every "
	       "other one freed;\n  footprint delta: kmem and locked_slab "
	       "pages from the source, glibc\n  mallinfo2 arena + mmapped, "
	       "jemalloc stats.resident, mimalloc committed,\n  tcmalloc heap "
	       "minus unmapped; locked_slab serves at most 512 B):\n",
	       KB_MEM_N);
	for (int a = KB_KMALLOC; a < KB_NALLOC; a++)
		kb_mem_one((enum kb_alloc)a);
}

/* ---- targets ---- */

static bool kb_ns(const struct bench_results *res, bool cpu, enum kb_work w,
		  enum kb_alloc a, unsigned n, double *ns)
{
	double lo, hi;
	bool ran = cpu ? bench_result_cpu(res, kb_work_name[w],
					  kb_alloc_name[a], n, ns, &lo, &hi)
		       : bench_result(res, kb_work_name[w], kb_alloc_name[a], n,
				      ns, &lo, &hi);
	return ran && *ns > 0;
}

static void kb_target(const char *what, bool ok, double v, const char *unit,
		      const char *target)
{
	printf("  %-58s %7.4g %-7s (%s): %s\n", what, v, unit, target,
	       ok ? "met" : "NOT met");
}

/* kmem_cache against every general allocator that ran, on w at n threads. */
static void kb_vs_general(const struct bench_results *res, enum kb_work w,
			  unsigned n, bool cpu, double ratio, const char *tg)
{
	double ours, best = 0, v;
	const char *bestn = NULL;
	char what[96];
	if (!kb_ns(res, cpu, w, KB_KCACHE, n, &ours)) {
		printf("  %s at %u threads: not measured\n", kb_work_name[w],
		       n);
		return;
	}
	for (int a = KB_GLIBC; a < KB_NALLOC; a++)
		if (kb_ns(res, cpu, w, (enum kb_alloc)a, n, &v) &&
		    (!bestn || v < best)) {
			best = v;
			bestn = kb_alloc_name[a];
		}
	if (!bestn) {
		printf("  %s at %u threads: no general allocator ran\n",
		       kb_work_name[w], n);
		return;
	}
	snprintf(what, sizeof(what),
		 "%s, %u thr: kmem_cache / fastest (%s), %s", kb_work_name[w],
		 n, bestn, cpu ? "cpu" : "wall");
	kb_target(what, ours <= ratio * best, ours / best, "x", tg);
}

static void kb_report(const struct bench_results *res)
{
	double v, st[3], en[3];
	printf("targets (medians; a missed target does not fail the run):\n");
	if (kb_ns(res, true, KB_PAIR, KB_KCACHE, 1, &v))
		kb_target("pair, kmem_cache, 1 thr, cpu (magazine hit)",
			  v <= KB_PAIR_NS, v, "ns/pair", "<= 8");
	for (unsigned n = 1; n <= 2; n++) {
		kb_vs_general(res, KB_PC, n, true, 1.0, "< 1x, cpu");
		kb_vs_general(res, KB_PC, n, false, 1.0, "< 1x, wall");
		kb_vs_general(res, KB_TT, n, true, KB_TT_RATIO, "<= 1.2x, cpu");
	}
	bench_result_load(res, st, en);
	printf("  (load %.2f at start, %.2f at end)\n", st[0], en[0]);
	if (!bench_partial()) /* --only or --impls */
		kb_mem();
}

static struct bench_prog kb_prog = {
	.name = "bench_kmem",
	.impls = kb_impls,
	.nimpls = sizeof(kb_impls) / sizeof(kb_impls[0]),
	.header = kb_header,
	.report = kb_report,
};

int main(int argc, char **argv)
{
	/* Spare static TLS for jemalloc's dlopen (see the top): once. */
	if (!getenv("KB_REEXEC")) {
		static char tun[512];
		const char *old = getenv("GLIBC_TUNABLES");
		snprintf(tun, sizeof(tun),
			 "%s%sglibc.rtld.optional_static_tls="
			 "65536",
			 old ? old : "", old ? ":" : "");
		setenv("KB_REEXEC", "1", 1);
		setenv("GLIBC_TUNABLES", tun, 1);
		execv("/proc/self/exe", argv);
		/* Fall through without it: jemalloc may then be skipped. */
	}
	kb_libs_load();
	return bench_main(&kb_prog, argc, argv);
}
