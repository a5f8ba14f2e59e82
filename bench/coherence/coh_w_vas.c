/*
 * coh_w_vas.c: bench_vas.c itself (its workloads: lookups and writes on a
 * filled tree), compiled for the coherence accounting mode: its main()
 * becomes coh_main_vas() and hands its struct bench_prog to coh_register()
 * instead of running the timed harness (coh_main.c).
 */
#include "coh_main.h"
#define main coh_main_vas
#define bench_main coh_register
#include "../bench_vas.c"
