/* coh_main.h: what the wrapped benchmark programs (coh_w_*.c) call. */
#ifndef COH_MAIN_H
#define COH_MAIN_H

#include "bench.h"

/* Instead of bench_main(): keep prog for the coherence runs; returns 0. */
int coh_register(const struct bench_prog *prog, int argc, char **argv);

/*
 * The wrapped programs' main()s (kmem: a function of coh_w_kmem.c that
 * registers bench_kmem's program without its main()).
 */
int coh_main_buddy(int argc, char **argv);
int coh_main_vas(int argc, char **argv);
int coh_main_lockfree(int argc, char **argv);
int coh_main_kmem(int argc, char **argv);

#endif /* COH_MAIN_H */
