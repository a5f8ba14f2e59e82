/*
 * bench_arena.h: a memory source for the nodes of the benchmarked trees.
 *
 * Fixed-size objects carved from 64 MiB chunks aligned to 2 MiB and marked
 * MADV_HUGEPAGE, with a free list; a mutex around it (it is called rarely:
 * when a tree grows or shrinks). In a kernel the tree nodes are buddy
 * frames reached through the direct map, which is mapped with huge pages;
 * this gives the userspace benchmark the same TLB reach, and gives it to
 * every implementation alike (bench_vas: the B+-tree's nodes and the
 * red-black trees' nodes both come from here). Memory goes back to the
 * system only at bench_arena_destroy().
 */
#ifndef BENCH_ARENA_H
#define BENCH_ARENA_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct bench_arena {
	pthread_mutex_t mu;
	size_t obj, align;
	char *cur, *end;                  /* the chunk being carved */
	void *free;                       /* objects given back */
	struct bench_arena_chunk *chunks; /* every chunk, for destroy */
};

/* Objects of obj bytes (rounded up to align, a power of two). */
void bench_arena_init(struct bench_arena *a, size_t obj, size_t align);
void *bench_arena_get(struct bench_arena *a); /* NULL: out of memory */
void bench_arena_put(struct bench_arena *a, void *o);
void bench_arena_destroy(struct bench_arena *a);

#endif /* BENCH_ARENA_H */
