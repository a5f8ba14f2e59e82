/*
 * Helpers shared by version 3's buddy tests (test_buddy_units,
 * test_buddy_edges, test_buddy_place_v3): their random source and the
 * zone check that says which invariant broke where.
 */
#ifndef LF_VERIFY_BUDDY_TEST_H
#define LF_VERIFY_BUDDY_TEST_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "buddy.h"

/* xorshift64: the state must not be 0. */
static inline uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* buddy_zone_check(), reported: 0, or the number of the invariant broken. */
static inline int check_zone(struct buddy_zone *z, bool coalesced)
{
	uint64_t fr;
	int inv = buddy_zone_check(z, coalesced, &fr);
	if (inv)
		fprintf(stderr, "invariant B%d broken at %" PRIu64 "\n", inv,
			fr);
	return inv;
}

#endif
