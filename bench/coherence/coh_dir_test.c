/*
 * coh_dir_test.c: the coherence directory (coh_dir.h) on hand-made access
 * sequences whose counts are known: ping-pong of one line (plain and by
 * atomic read-modify-writes), false sharing of two words in one line
 * against the same words a line apart, read sharing by several CPUs then a
 * write, an access across two lines, and the table's growth. Exits 1 on
 * the first count that differs.
 */
#include "coh_dir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned failures;

#define EXPECT(what, got, want)                                                \
	do {                                                                   \
		unsigned long long g_ = (got), w_ = (want);                    \
		if (g_ != w_) {                                                \
			fprintf(stderr, "%s: %s = %llu, expected %llu\n",      \
				what, #got, g_, w_);                           \
			failures++;                                            \
		}                                                              \
	} while (0)

#define BASE ((uintptr_t)0x100000) /* line aligned */

static void fresh(struct coh_dir *d)
{
	coh_dir_reset(d);
}

/*
 * Two CPUs pass one line back and forth, each reading it then writing it
 * (a handoff). CPU 0's first write and CPU 1's first read are cold (first
 * touches); from then on every handoff is one transfer (the read gets the
 * line back from the writer), one upgrade (the write invalidates the other
 * copy) and one invalidation.
 */
static void test_pingpong(struct coh_dir *d)
{
	const unsigned k = 1000;

	fresh(d);
	coh_dir_access(d, 0, BASE, 8, COH_WRITE);
	for (unsigned i = 1; i <= k; i++) {
		coh_dir_access(d, i & 1, BASE, 8, COH_READ);
		coh_dir_access(d, i & 1, BASE, 8, COH_WRITE);
	}
	EXPECT("pingpong", d->n.cold, 2);
	EXPECT("pingpong", d->n.transfers, k - 1);
	EXPECT("pingpong", d->n.upgrades, k);
	EXPECT("pingpong", d->n.invalidations, k);
	EXPECT("pingpong", d->n.rmw_remote, 0);
	EXPECT("pingpong", d->n.accesses, 2 * k + 1);
	EXPECT("pingpong", coh_dir_hottest(d), 2 * k - 1);
	/* One more handoff, access by access: a transfer, an upgrade, a hit. */
	EXPECT("pingpong, one", coh_dir_access(d, 1, BASE, 8, COH_READ), 1);
	EXPECT("pingpong, one", coh_dir_access(d, 1, BASE, 8, COH_WRITE), 1);
	EXPECT("pingpong, one", coh_dir_access(d, 1, BASE, 8, COH_READ), 0);
	EXPECT("pingpong, one", coh_dir_hottest(d), 2 * k + 1);

	/* By RMWs: each one after the first two moves the line, remotely. */
	fresh(d);
	for (unsigned i = 0; i <= k; i++)
		coh_dir_access(d, i & 1, BASE, 8, COH_RMW);
	EXPECT("pingpong rmw", d->n.cold, 2);
	EXPECT("pingpong rmw", d->n.transfers, k - 1);
	EXPECT("pingpong rmw", d->n.upgrades, 0);
	EXPECT("pingpong rmw", d->n.invalidations, k);
	EXPECT("pingpong rmw", d->n.rmws, k + 1);
	EXPECT("pingpong rmw", d->n.rmw_remote, k);

	/* One CPU alone: nothing after the cold miss, nothing remote. */
	fresh(d);
	for (unsigned i = 0; i <= k; i++) {
		coh_dir_access(d, 3, BASE, 8, COH_READ);
		coh_dir_access(d, 3, BASE, 8, COH_RMW);
	}
	EXPECT("alone", d->n.cold, 1);
	EXPECT("alone", d->n.transfers + d->n.upgrades, 0);
	EXPECT("alone", d->n.rmw_remote, 0);
}

/*
 * False sharing: CPU 0 writes word 0 and CPU 1 word 1 of one line, in
 * turn: every write but the first two (cold) moves the line. The same
 * words a line apart: two cold misses, then nothing.
 */
static void test_false_sharing(struct coh_dir *d)
{
	const unsigned k = 500;

	fresh(d);
	for (unsigned i = 0; i < k; i++) {
		coh_dir_access(d, 0, BASE, 8, COH_WRITE);
		coh_dir_access(d, 1, BASE + 8, 8, COH_WRITE);
	}
	EXPECT("false sharing", d->n.cold, 2);
	EXPECT("false sharing", d->n.transfers, 2 * k - 2);
	EXPECT("false sharing", d->n.invalidations, 2 * k - 1);

	fresh(d);
	for (unsigned i = 0; i < k; i++) {
		coh_dir_access(d, 0, BASE, 8, COH_WRITE);
		coh_dir_access(d, 1, BASE + COH_LINE + 8, 8, COH_WRITE);
	}
	EXPECT("padded", d->n.cold, 2);
	EXPECT("padded", d->n.transfers + d->n.upgrades, 0);
	EXPECT("padded", d->n.invalidations, 0);
	EXPECT("padded", coh_dir_hottest(d), 0);
}

/*
 * Read sharing: CPU 0 writes, CPUs 1-7 read, again and again: 8 cold
 * misses, then nothing (read sharing is free once warm). CPU 0 writes (one
 * upgrade, 7 invalidations); CPU 5 reads (a transfer: it lost its copy)
 * and writes (an upgrade, invalidating CPU 0's copy); then CPUs 0-7 read:
 * 7 transfers (all but CPU 5 lost their copies), no invalidation.
 */
static void test_read_sharing(struct coh_dir *d)
{
	fresh(d);
	coh_dir_access(d, 0, BASE, 4, COH_WRITE);
	for (unsigned r = 0; r < 3; r++)
		for (unsigned c = 1; c < 8; c++)
			coh_dir_access(d, c, BASE + 4 * c, 4, COH_READ);
	EXPECT("read sharing", d->n.cold, 8);
	EXPECT("read sharing", d->n.transfers + d->n.upgrades, 0);
	EXPECT("read sharing", d->n.invalidations, 0);
	coh_dir_access(d, 0, BASE, 4, COH_WRITE);
	EXPECT("read sharing, write", d->n.upgrades, 1);
	EXPECT("read sharing, write", d->n.invalidations, 7);
	coh_dir_access(d, 5, BASE, 4, COH_READ);
	coh_dir_access(d, 5, BASE, 4, COH_WRITE);
	EXPECT("read sharing, cpu 5", d->n.transfers, 1);
	EXPECT("read sharing, cpu 5", d->n.upgrades, 2);
	EXPECT("read sharing, cpu 5", d->n.invalidations, 8);
	for (unsigned c = 0; c < 8; c++)
		coh_dir_access(d, c, BASE, 4, COH_READ);
	EXPECT("read sharing, all", d->n.transfers, 8);
	EXPECT("read sharing, all", d->n.invalidations, 8);
	EXPECT("read sharing, all", d->n.cold, 8);
}

/* An 8-byte access at offset 60 is on two lines. */
static void test_straddle(struct coh_dir *d)
{
	fresh(d);
	EXPECT("straddle", coh_dir_access(d, 0, BASE + 60, 8, COH_WRITE), 0);
	coh_dir_access(d, 1, BASE + 60, 8, COH_READ);
	EXPECT("straddle", d->n.accesses, 4);
	EXPECT("straddle", d->n.cold, 4);
	EXPECT("straddle", coh_dir_access(d, 0, BASE + 60, 8, COH_WRITE), 2);
	coh_dir_access(d, 1, BASE + 60, 8, COH_READ);
	EXPECT("straddle", d->n.upgrades, 2);
	EXPECT("straddle", d->n.transfers, 2);
}

/* Many lines: the table grows and keeps every line's state. */
static void test_growth(struct coh_dir *d)
{
	const uint64_t n = 300000;

	fresh(d);
	for (uint64_t i = 0; i < n; i++)
		coh_dir_access(d, (unsigned)(i % 64), BASE + i * COH_LINE, 8,
			       COH_WRITE);
	for (uint64_t i = 0; i < n; i++)
		coh_dir_access(d, (unsigned)((i + 1) % 64), BASE + i * COH_LINE,
			       8, COH_READ);
	EXPECT("growth", d->used, n);
	EXPECT("growth", d->n.cold, 2 * n);
	EXPECT("growth", d->n.transfers + d->n.upgrades, 0);
	for (uint64_t i = 0; i < n; i++)
		coh_dir_access(d, (unsigned)((i + 1) % 64), BASE + i * COH_LINE,
			       8, COH_WRITE);
	for (uint64_t i = 0; i < n; i++)
		coh_dir_access(d, (unsigned)(i % 64), BASE + i * COH_LINE, 8,
			       COH_READ);
	EXPECT("growth, handed over", d->n.upgrades, n);
	EXPECT("growth, handed over", d->n.transfers, n);
	EXPECT("growth, handed over", d->n.invalidations, n);
}

int main(void)
{
	struct coh_dir d;

	if (!coh_dir_init(&d)) {
		fprintf(stderr, "coh_dir_test: out of memory\n");
		return 1;
	}
	test_pingpong(&d);
	test_false_sharing(&d);
	test_read_sharing(&d);
	test_straddle(&d);
	test_growth(&d);
	coh_dir_fini(&d);
	if (failures != 0) {
		fprintf(stderr, "coh_dir_test: %u counts wrong\n", failures);
		return 1;
	}
	printf("coh_dir_test: every count as expected\n");
	return 0;
}
