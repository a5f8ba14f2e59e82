/*
 * coh_w_lockfree.c: bench_lockfree.c itself (the stack and epoch
 * implementations), compiled for the coherence accounting mode: its main()
 * becomes coh_main_lockfree() and hands its struct bench_prog to
 * coh_register() instead of running the timed harness (coh_main.c).
 */
#include "coh_main.h"
#define main coh_main_lockfree
#define bench_main coh_register
#include "../bench_lockfree.c"
