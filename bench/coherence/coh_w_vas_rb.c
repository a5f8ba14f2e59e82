/*
 * coh_w_vas_rb.c: the red-black-tree baseline (bench_vas_rb.c) with its
 * pthread locks replaced by those of coh_pthread.h, which the logical CPUs
 * (coroutines on one thread) can wait on, recorded like glibc's.
 */
#include "coh_pthread.h"

#include "../bench_vas_rb.c"
