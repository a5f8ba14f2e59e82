/*
 * verify/kmem/kmem_src.h: a page source for kmem in userspace tests and
 * benchmarks: an mmap'd arena of 2^k pages handed out as naturally aligned
 * blocks of 2^order pages (first fit over a bitmap, under a mutex: simple
 * enough to trust). It counts what it hands out and can be told to fail:
 * return ENOMEM after a budget of pages, a bad address, or an error code.
 */
#ifndef KMEM_SRC_H
#define KMEM_SRC_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kmem.h"

struct ksrc {
	pthread_mutex_t mu;
	uintptr_t base;
	size_t npages;
	uint8_t *used; /* per page: 1 if handed out */
	size_t held;   /* pages handed out now */
	size_t limit;  /* at most this many held (ENOMEM past it) */
	size_t allocs, frees;
	int fail;  /* 0; else the next allocs return this code */
	int lie;   /* next allocs return an address out of range (1), or
		    * the last page, a block that runs past the end (2) */
	void *map; /* the mapping, for ksrc_fini() */
	size_t map_bytes;
};

static inline int ksrc_init(struct ksrc *s, size_t npages)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	/* Align the arena to its size so that blocks are naturally aligned. */
	size_t bytes = npages * KMEM_PAGE_SIZE;
	void *m = mmap(NULL, 2 * bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return -1;
	uintptr_t a = ((uintptr_t)m + bytes - 1) & ~(uintptr_t)(bytes - 1);
	s->map = m;
	s->map_bytes = 2 * bytes;
	s->base = a;
	s->npages = npages;
	s->limit = npages;
	s->used = calloc(npages, 1);
	return s->used ? 0 : -1;
}

static inline int ksrc_alloc(void *arg, unsigned cpu, unsigned order,
			     uintptr_t *addr)
{
	struct ksrc *s = arg;
	size_t n = (size_t)1 << order;
	(void)cpu;
	pthread_mutex_lock(&s->mu);
	if (s->fail) {
		int e = s->fail;
		pthread_mutex_unlock(&s->mu);
		return e;
	}
	if (s->lie) {
		pthread_mutex_unlock(&s->mu);
		*addr = s->base + (s->npages - (s->lie == 2)) * KMEM_PAGE_SIZE;
		return 0; /* past the end, or its last page (never marked) */
	}
	if (s->held + n <= s->limit)
		for (size_t p = 0; p + n <= s->npages; p += n) {
			size_t i = 0;
			while (i < n && !s->used[p + i])
				i++;
			if (i < n)
				continue;
			memset(s->used + p, 1, n);
			s->held += n;
			s->allocs++;
			pthread_mutex_unlock(&s->mu);
			*addr = s->base + p * KMEM_PAGE_SIZE;
			return 0;
		}
	pthread_mutex_unlock(&s->mu);
	return KMEM_ENOMEM;
}

static inline void ksrc_free(void *arg, unsigned cpu, uintptr_t addr,
			     unsigned order)
{
	struct ksrc *s = arg;
	size_t n = (size_t)1 << order, p = (addr - s->base) / KMEM_PAGE_SIZE;
	(void)cpu;
	pthread_mutex_lock(&s->mu);
	if (addr >= s->base && p + n <= s->npages) {
		/* A block given back twice would leave a page already free. */
		for (size_t i = 0; i < n; i++) {
			if (!s->used[p + i])
				abort();
			s->used[p + i] = 0;
		}
		s->held -= n;
		s->frees++;
	}
	pthread_mutex_unlock(&s->mu);
}

static inline size_t ksrc_held(struct ksrc *s)
{
	pthread_mutex_lock(&s->mu);
	size_t h = s->held;
	pthread_mutex_unlock(&s->mu);
	return h;
}

static inline void ksrc_fini(struct ksrc *s)
{
	munmap(s->map, s->map_bytes);
	free(s->used);
	pthread_mutex_destroy(&s->mu);
}

/* A kmem over s in fresh metadata; NULL on failure. */
static inline struct kmem *ksrc_kmem(struct ksrc *s, unsigned ncpus,
				     unsigned max_caches, unsigned empty_max)
{
	struct kmem_config cfg = {
		.base = s->base,
		.size = s->npages * KMEM_PAGE_SIZE,
		.ncpus = ncpus,
		.max_caches = max_caches,
		.empty_max = empty_max,
		.source = { ksrc_alloc, ksrc_free, s },
	};
	size_t sz = kmem_meta_size(&cfg);
	void *meta = NULL;
	struct kmem *k;
	if (sz == 0 || posix_memalign(&meta, 64, sz) != 0)
		return NULL;
	if (kmem_init(&k, meta, sz, &cfg) != 0) {
		free(meta);
		return NULL;
	}
	return k;
}

#endif
