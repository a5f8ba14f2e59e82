/*
 * bench_arena.c: fixed-size objects carved from 2 MiB-aligned chunks that
 * the kernel is asked to back with transparent huge pages (bench_arena.h).
 */
#define _GNU_SOURCE
#include "bench_arena.h"

#include <stdint.h>
#include <sys/mman.h>

#define BENCH_ARENA_HUGE (2u << 20)

struct bench_arena_chunk {
	struct bench_arena_chunk *next;
	size_t size; /* bytes mapped, header included */
};

void bench_arena_init(struct bench_arena *a, size_t obj, size_t align)
{
	*a = (struct bench_arena){ .obj = (obj + align - 1) / align * align,
				   .align = align };
	pthread_mutex_init(&a->mu, NULL);
}

/*
 * A new chunk of 64 MiB, or room for one object if that is more, 2 MiB-
 * aligned; false if out of memory.
 */
static bool bench_arena_grow(struct bench_arena *a)
{
	size_t size = 64u << 20, map;

	if (size < a->obj + BENCH_ARENA_HUGE)
		size = (a->obj + 2 * BENCH_ARENA_HUGE - 1) &
		       ~(size_t)(BENCH_ARENA_HUGE - 1);
	map = size + BENCH_ARENA_HUGE;
	char *p = mmap(NULL, map, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t start;

	if (p == MAP_FAILED)
		return false;
	/* Trim to a 2 MiB-aligned size bytes, so huge pages can back it. */
	start = ((uintptr_t)p + BENCH_ARENA_HUGE - 1) &
		~(uintptr_t)(BENCH_ARENA_HUGE - 1);
	if (start > (uintptr_t)p)
		munmap(p, start - (uintptr_t)p);
	munmap((char *)start + size, (uintptr_t)p + map - start - size);
	madvise((void *)start, size, MADV_HUGEPAGE); /* a hint: may fail */
	struct bench_arena_chunk *c = (void *)start;
	c->next = a->chunks;
	c->size = size;
	a->chunks = c;
	a->cur = (char *)start +
		 a->align * ((sizeof(*c) + a->align - 1) / a->align);
	a->end = (char *)start + size;
	return true;
}

void *bench_arena_get(struct bench_arena *a)
{
	void *o;

	pthread_mutex_lock(&a->mu);
	if ((o = a->free) != NULL) {
		a->free = *(void **)o;
	} else if ((a->cur != NULL && a->cur + a->obj <= a->end) ||
		   bench_arena_grow(a)) {
		/* cur is NULL before the first chunk: no arithmetic on it. */
		o = a->cur;
		a->cur += a->obj;
	}
	pthread_mutex_unlock(&a->mu);
	return o;
}

void bench_arena_put(struct bench_arena *a, void *o)
{
	pthread_mutex_lock(&a->mu);
	*(void **)o = a->free;
	a->free = o;
	pthread_mutex_unlock(&a->mu);
}

void bench_arena_destroy(struct bench_arena *a)
{
	struct bench_arena_chunk *c, *next;

	for (c = a->chunks; c != NULL; c = next) {
		next = c->next;
		munmap(c, c->size);
	}
	pthread_mutex_destroy(&a->mu);
	*a = (struct bench_arena){ 0 };
}
