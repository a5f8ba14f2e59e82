/*
 * test_cas2.c: lf_cas2_u64(), the compare-exchange of two adjacent u64 that
 * the buddy's version 3 uses on a unit's word and cached mask (docs/design.md
 * 2.7, "Bits and the lazy clear"), does what its comment says: it writes
 * both halves or neither, compares both, and on failure returns both halves
 * as they were at one instant.
 *
 * Built twice (verify/CMakeLists.txt): test_cas2 with the x86-64 assembly
 * (lock cmpxchg16b), test_cas2_builtin with LF_CAS2_BUILTIN, the
 * compiler's 16-byte builtin that other architectures get.
 *
 * The concurrent part: two writers add 1 to both halves N times each with
 * lf_cas2_u64() loops, while a reader snapshots the pair with a CAS that
 * cannot succeed (its expected value is never stored) and checks that the
 * two halves of every snapshot are equal. Two separate 8-byte CASes, or a
 * torn read, give unequal halves; a lost update gives a final count below
 * the adds counted. The run must also have done its work: the writers go on
 * past N adds each until the reader has seen N_BETWEEN values above 0 (all
 * taken while both writers still run: they stop only after that).
 */
#include "check.h"
#include "lf_atomic.h"

#include <pthread.h>

#define N_ADDS 200000
#define NEVER UINT64_MAX /* a value no half ever holds */

#define N_BETWEEN 1000 /* snapshots during the adds the reader waits for */

static _Alignas(16) lf_atomic_u64 pair[2];
static atomic_int writers_done, reader_saw;
static uint64_t adds[2]; /* each writer's count, read after the join */

/*
 * A CAS expecting {x, y} while the pair holds {3, 4} (order o): refused,
 * nothing written, both halves returned.
 */
static void check_refused(uint64_t x, uint64_t y, lf_order o)
{
	uint64_t e[2] = { x, y }, d[2] = { 5, 6 };
	CHECK(!lf_cas2_u64(pair, e, d, o));
	CHECK_EQ(e[0], 3);
	CHECK_EQ(e[1], 4);
	CHECK_EQ(lf_load_u64(&pair[0], LF_RELAXED), 3);
	CHECK_EQ(lf_load_u64(&pair[1], LF_RELAXED), 4);
}

static void test_semantics(void)
{
	lf_init_u64(&pair[0], 1);
	lf_init_u64(&pair[1], 2);
	uint64_t e[2] = { 1, 2 }, d[2] = { 3, 4 };
	CHECK(lf_cas2_u64(pair, e, d, LF_ACQ_REL));
	CHECK_EQ(lf_load_u64(&pair[0], LF_RELAXED), 3);
	CHECK_EQ(lf_load_u64(&pair[1], LF_RELAXED), 4);

	check_refused(9, 4, LF_ACQ_REL); /* the low half differs */
	check_refused(3, 9, LF_RELEASE); /* the high half */
	check_refused(4, 3, LF_ACQ_REL); /* {4, 3} is not {3, 4} */

	/* The full width of each half is compared and written. */
	uint64_t e4[2] = { 3, 4 }, d4[2] = { 0x8000000000000001u, 1u << 31 };
	CHECK(lf_cas2_u64(pair, e4, d4, LF_SEQ_CST));
	uint64_t e5[2] = { 1, 1u << 31 }, d5[2] = { 0, 0 };
	CHECK(!lf_cas2_u64(pair, e5, d5, LF_ACQ_REL));
	CHECK_EQ(e5[0], 0x8000000000000001u);
	uint64_t e6[2] = { 0x8000000000000001u, 1u << 31 }, d6[2] = { 0, 0 };
	CHECK(lf_cas2_u64(pair, e6, d6, LF_ACQ_REL));
	CHECK_EQ(lf_load_u64(&pair[0], LF_RELAXED), 0);
	CHECK_EQ(lf_load_u64(&pair[1], LF_RELAXED), 0);
}

/* Adds until it did N_ADDS and the reader saw N_BETWEEN values above 0. */
static void *writer(void *arg)
{
	uint64_t *n = arg;
	/* Relaxed: reader_saw is a stop flag and carries no data. */
	for (*n = 0; *n < N_ADDS ||
		     !atomic_load_explicit(&reader_saw, memory_order_relaxed);
	     ++*n) {
		uint64_t e[2] = { 0, 0 };
		for (;;) {
			uint64_t d[2] = { e[0] + 1, e[1] + 1 };
			/* Acq_rel: pairs with the other writer's and the
			 * reader's. */
			if (lf_cas2_u64(pair, e, d, LF_ACQ_REL))
				break;
		}
	}
	/* Release: pairs with the reader's acquire load of writers_done. */
	atomic_fetch_add_explicit(&writers_done, 1, memory_order_release);
	return NULL;
}

static void test_concurrent(void)
{
	pthread_t t[2];
	unsigned long reads = 0, torn = 0, between = 0;

	for (int i = 0; i < 2; i++)
		CHECK_FATAL(pthread_create(&t[i], NULL, writer, &adds[i]) == 0);
	/* Acquire: pairs with each writer's release add (its last CAS). */
	while (atomic_load_explicit(&writers_done, memory_order_acquire) < 2) {
		uint64_t e[2] = { NEVER, NEVER }, d[2] = { NEVER, NEVER };
		/* Acquire: pairs with the writers' release halves. */
		if (lf_cas2_u64(pair, e, d, LF_ACQUIRE))
			torn++; /* the pair held NEVER: impossible */
		reads++;
		if (e[0] != e[1])
			torn++;
		/* Relaxed: a stop flag (the writers' loop), no data. */
		if (e[0] > 0 && ++between == N_BETWEEN)
			atomic_store_explicit(&reader_saw, 1,
					      memory_order_relaxed);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(torn, 0);
	CHECK(between >= N_BETWEEN); /* the reader overlapped the writers */
	CHECK(adds[0] >= N_ADDS && adds[1] >= N_ADDS);
	CHECK_EQ(lf_load_u64(&pair[0], LF_RELAXED), adds[0] + adds[1]);
	CHECK_EQ(lf_load_u64(&pair[1], LF_RELAXED), adds[0] + adds[1]);
	printf("test_cas2: %lu snapshots, %lu during the adds\n", reads,
	       between);
}

int main(void)
{
	test_semantics();
	test_concurrent();
	return check_exit("test_cas2");
}
