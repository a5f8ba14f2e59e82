/*
 * coh_w_buddy.c: bench_buddy.c itself (its list of workloads and
 * implementations), compiled for the coherence accounting mode: its main()
 * becomes coh_main_buddy() and hands its struct bench_prog to
 * coh_register() instead of running the timed harness (coh_main.c).
 */
#include "coh_main.h"
#define main coh_main_buddy
#define bench_main coh_register
#include "../bench_buddy.c"
