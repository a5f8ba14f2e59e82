/*
 * bench_stack.c: the stack benchmark. One operation is a pop followed by a
 * push of the element just popped, on one stack shared by every thread (so
 * at 2 threads the head word is contended), the stack holding
 * BENCH_STACK_SIZE elements.
 *
 * Implementations:
 *   lf_stack       ours (lockfree/lf_stack.h): 64-bit head word {index, tag},
 *                  one 64-bit CAS per operation, ABA-safe; push and pop are
 *                  calls into lf_core (not inline).
 *   ck_stack_upmc  Concurrency Kit ck_stack_push_upmc/ck_stack_pop_upmc:
 *                  pointer head, one 64-bit CAS, no ABA protection; inline.
 *   ck_stack_mpmc  ck_stack_push_mpmc/ck_stack_pop_mpmc: {pointer,
 *                  generation} head, 128-bit CAS in pop, ABA-safe; inline.
 *
 * ck_stack_pop_upmc is not ABA-safe when popped elements are pushed again,
 * which this workload does. At 1 or 2 threads that is harmless here: a
 * thread holds at most one element and pushes back the one it popped, so
 * while one thread is inside pop the other can only take the top and put
 * the same element back, leaving the link the first one read unchanged. At
 * 3 threads two others can take the top two and put back only the first,
 * and the stale CAS installs an element that is not on the stack; so the
 * series is skipped above 2 threads.
 *
 * ck_stack_pop_mpmc exists only where ck_pr provides a double-width CAS
 * (ck_pr_cas_ptr_2_value). With CK_USE_CC_BUILTINS (which this program is
 * built with, so that ThreadSanitizer sees ck's read-modify-writes) ck 0.7
 * provides none, so it is supplied here from __sync_val_compare_and_swap on
 * 16 bytes: with -mcx16 that is the same lock cmpxchg16b that ck's x86_64
 * assembly backend emits.
 *
 * After each run, check() pops every element on one thread and fails on an
 * index out of range, an element seen twice, or one missing; the timed loop
 * counts pops that found the stack empty (impossible with more elements
 * than threads), which also fail the check.
 */
#include "bench.h"

#include "lf_stack.h"

#include <stdio.h>
#include <string.h>

#include <ck_pr.h>

#if !defined(CK_F_PR_CAS_PTR_2_VALUE) && defined(__x86_64__) &&                \
	defined(__GCC_HAVE_SYNC_COMPARE_AND_SWAP_16)
#define CK_F_PR_CAS_PTR_2_VALUE
/* ck's contract: CAS the 16 bytes at t from *c to *s; *v gets the old. */
static inline bool ck_pr_cas_ptr_2_value(void *t, void *c, void *s, void *v)
{
	unsigned __int128 cmp, set, old;

	memcpy(&cmp, c, sizeof(cmp));
	memcpy(&set, s, sizeof(set));
	old = __sync_val_compare_and_swap((unsigned __int128 *)t, cmp, set);
	memcpy(v, &old, sizeof(old));
	return old == cmp;
}
#endif

#include <ck_stack.h>

#define BENCH_STACK_SIZE 1024

/* Shared by the three implementations: empty pops seen in timed loops. */
static lf_atomic_u64 bench_stack_empty_pops;

/* Mark idx as seen; -1 (and a message) if out of range or seen before. */
static int bench_stack_seen(const char *impl, bool *seen, size_t idx)
{
	if (idx >= BENCH_STACK_SIZE) {
		fprintf(stderr, "%s: popped element %zu out of range\n", impl,
			idx);
		return -1;
	}
	if (seen[idx]) {
		fprintf(stderr, "%s: element %zu is on the stack twice\n", impl,
			idx);
		return -1;
	}
	seen[idx] = true;
	return 0;
}

/* The end of every check: everything seen exactly once, no empty pop. */
static int bench_stack_check_end(const char *impl, const bool *seen, int rc)
{
	size_t missing = 0;

	for (size_t i = 0; i < BENCH_STACK_SIZE; i++)
		missing += !seen[i];
	if (missing != 0) {
		fprintf(stderr, "%s: %zu of %u elements missing\n", impl,
			missing, BENCH_STACK_SIZE);
		rc = -1;
	}
	/* Relaxed: the threads were joined. */
	uint64_t empty = lf_load_u64(&bench_stack_empty_pops, LF_RELAXED);
	if (empty != 0) {
		fprintf(stderr, "%s: %llu pops found the stack empty\n", impl,
			(unsigned long long)empty);
		rc = -1;
	}
	return rc;
}

static void bench_stack_count_empty(uint64_t empty)
{
	if (empty != 0)
		lf_fetch_add_u64(&bench_stack_empty_pops, empty, LF_RELAXED);
}

static const char *bench_stack_never_skip(unsigned nthreads)
{
	(void)nthreads;
	return NULL;
}

static void bench_stack_thread_nop(unsigned id)
{
	(void)id;
}

/* ---- lf_stack ---- */

static struct {
	struct lf_stack stack LF_CACHE_ALIGNED;
	lf_atomic_u32 links[BENCH_STACK_SIZE] LF_CACHE_ALIGNED;
} bench_lf;

static int bench_lf_stack_setup(unsigned nthreads)
{
	(void)nthreads;
	lf_init_u64(&bench_stack_empty_pops, 0);
	lf_stack_init(&bench_lf.stack);
	for (uint32_t i = BENCH_STACK_SIZE; i-- > 0;)
		if (lf_stack_push(&bench_lf.stack, bench_lf.links, i) != 0)
			return -1;
	return 0;
}

static uint64_t bench_lf_stack_run(unsigned id, const struct bench_stop *stop)
{
	uint64_t ops = 0, empty = 0;

	(void)id;
	do {
		for (unsigned i = 0; i < BENCH_BATCH; i++) {
			uint32_t e =
				lf_stack_pop(&bench_lf.stack, bench_lf.links);
			if (LF_UNLIKELY(e == LF_STACK_NIL)) {
				empty++;
				continue;
			}
			lf_stack_push(&bench_lf.stack, bench_lf.links, e);
		}
		ops += BENCH_BATCH;
	} while (!bench_stopped(stop));
	bench_stack_count_empty(empty);
	return ops;
}

static int bench_lf_stack_check(void)
{
	static bool seen[BENCH_STACK_SIZE];
	uint32_t e;

	memset(seen, 0, sizeof(seen));
	while ((e = lf_stack_pop(&bench_lf.stack, bench_lf.links)) !=
	       LF_STACK_NIL)
		if (bench_stack_seen("lf_stack", seen, e) != 0)
			return -1;
	return bench_stack_check_end("lf_stack", seen, 0);
}

/*
 * One struct bench_impl per implementation (bench.h): the tables share their
 * shape by design.
 */
const struct bench_impl bench_lf_stack = {
	.bench = "stack",
	.impl = "lf_stack",
	.ours = true,
	.skip = bench_stack_never_skip,
	.setup = bench_lf_stack_setup,
	.thread_init = bench_stack_thread_nop,
	.run = bench_lf_stack_run,
	.thread_fini = bench_stack_thread_nop,
	.check = bench_lf_stack_check,
};

/* ---- ck_stack, both variants on the same storage ---- */

static struct {
	/* 16-byte aligned for the double-width CAS of pop_mpmc. */
	ck_stack_t stack LF_CACHE_ALIGNED;
	ck_stack_entry_t nodes[BENCH_STACK_SIZE] LF_CACHE_ALIGNED;
} bench_ck;

static char bench_ck_generation_base;

static const char *bench_ck_stack_tsan_skip(unsigned nthreads)
{
	if (nthreads > 1 && bench_under_tsan())
		return "ck_pr loads are plain volatile reads of words other "
		       "threads CAS, and ck_stack links are plain fields: "
		       "data races in C11 terms, which TSan reports";
	return NULL;
}

static int bench_ck_stack_setup(unsigned nthreads)
{
	(void)nthreads;
	lf_init_u64(&bench_stack_empty_pops, 0);
	ck_stack_init(&bench_ck.stack);
	/*
	 * pop_mpmc adds 1 to the generation, a char pointer that
	 * ck_stack_init() sets to NULL, and UBSan rejects NULL + 1. Start it
	 * at a real address: ck only ever compares it.
	 */
	bench_ck.stack.generation = &bench_ck_generation_base;
	for (size_t i = BENCH_STACK_SIZE; i-- > 0;)
		ck_stack_push_upmc(&bench_ck.stack, &bench_ck.nodes[i]);
	return 0;
}

static int bench_ck_stack_check_impl(const char *impl)
{
	static bool seen[BENCH_STACK_SIZE];
	ck_stack_entry_t *e;

	memset(seen, 0, sizeof(seen));
	while ((e = ck_stack_pop_upmc(&bench_ck.stack)) != NULL)
		if (bench_stack_seen(impl, seen,
				     (size_t)(e - bench_ck.nodes)) != 0)
			return -1;
	return bench_stack_check_end(impl, seen, 0);
}

/* ck_stack_upmc */

static const char *bench_ck_stack_upmc_skip(unsigned nthreads)
{
	if (nthreads > 2)
		return "ck_stack_pop_upmc is not ABA-safe when more than 2 "
		       "threads push popped elements back (see bench_stack.c)";
	return bench_ck_stack_tsan_skip(nthreads);
}

/*
 * The timed loop of ck variant v (pop, push back what was popped): ck has
 * one function per variant, and a function pointer would put an indirect
 * call into the loop, so the loop is stamped out per variant.
 */
#define BENCH_CK_STACK_RUN(v)                                                  \
	static uint64_t bench_ck_stack_##v##_run(                              \
		unsigned id, const struct bench_stop *stop)                    \
	{                                                                      \
		uint64_t ops = 0, empty = 0;                                   \
		(void)id;                                                      \
		do {                                                           \
			for (unsigned i = 0; i < BENCH_BATCH; i++) {           \
				ck_stack_entry_t *e;                           \
				e = ck_stack_pop_##v(&bench_ck.stack);         \
				if (LF_UNLIKELY(e == NULL)) {                  \
					empty++;                               \
					continue;                              \
				}                                              \
				ck_stack_push_##v(&bench_ck.stack, e);         \
			}                                                      \
			ops += BENCH_BATCH;                                    \
		} while (!bench_stopped(stop));                                \
		bench_stack_count_empty(empty);                                \
		return ops;                                                    \
	}

BENCH_CK_STACK_RUN(upmc)

/* One struct bench_impl per implementation (bench.h), as below for mpmc. */

static int bench_ck_stack_upmc_check(void)
{
	return bench_ck_stack_check_impl("ck_stack_upmc");
}

const struct bench_impl bench_ck_stack_upmc = {
	.bench = "stack",
	.impl = "ck_stack_upmc",
	.skip = bench_ck_stack_upmc_skip,
	.setup = bench_ck_stack_setup,
	.thread_init = bench_stack_thread_nop,
	.run = bench_ck_stack_upmc_run,
	.thread_fini = bench_stack_thread_nop,
	.check = bench_ck_stack_upmc_check,
};

/* ck_stack_mpmc */

#ifdef CK_F_STACK_POP_MPMC
static const char *bench_ck_stack_mpmc_skip(unsigned nthreads)
{
	return bench_ck_stack_tsan_skip(nthreads);
}

BENCH_CK_STACK_RUN(mpmc)
#else
static const char *bench_ck_stack_mpmc_skip(unsigned nthreads)
{
	(void)nthreads;
	return "no double-width CAS on this target: ck_stack_pop_mpmc "
	       "is not available";
}

static uint64_t bench_ck_stack_mpmc_run(unsigned id,
					const struct bench_stop *stop)
{
	(void)id;
	(void)stop;
	return 0;
}
#endif

static int bench_ck_stack_mpmc_check(void)
{
	return bench_ck_stack_check_impl("ck_stack_mpmc");
}

const struct bench_impl bench_ck_stack_mpmc = {
	.bench = "stack",
	.impl = "ck_stack_mpmc",
	.skip = bench_ck_stack_mpmc_skip,
	.setup = bench_ck_stack_setup,
	.thread_init = bench_stack_thread_nop,
	.run = bench_ck_stack_mpmc_run,
	.thread_fini = bench_stack_thread_nop,
	.check = bench_ck_stack_mpmc_check,
};
