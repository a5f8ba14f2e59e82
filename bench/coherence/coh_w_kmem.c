/*
 * coh_w_kmem.c: bench_kmem.c itself (its workloads pair, threadtest,
 * prodcons, falseshare and its implementations kmem_cache, kmalloc and the
 * locked slab, over the same arena page source, kmem_src.h), compiled for
 * the coherence accounting mode. coh_main_kmem() hands its struct
 * bench_prog to coh_register() instead of running the timed harness
 * (coh_main.c).
 *
 * bench_kmem's own main() is compiled in under another name (its
 * bench_main() call made coh_register(), as in the other wrappers) and
 * never called: it re-executes the program for jemalloc's static TLS and
 * dlopen()s the general-purpose allocators, which this mode cannot run
 * (their code is not instrumented: coh_main.c's coh_unsupported()), so
 * they are never loaded. The arena's mutex (kmem_src.h, the page source
 * that kmem and the locked slab carve pages from) is coh_pthread.h's, as
 * the red-black tree's locks are: a glibc mutex held by one logical CPU
 * would block the one OS thread when another asks for it.
 */
#define _GNU_SOURCE
#include "coh_main.h"
#include "coh_pthread.h"

#define main coh_kmem_timed_main
#define bench_main coh_register
int coh_kmem_timed_main(int argc, char **argv);
#include "../bench_kmem.c"
#undef main
#undef bench_main

int coh_main_kmem(int argc, char **argv)
{
	return coh_register(&kb_prog, argc, argv);
}
