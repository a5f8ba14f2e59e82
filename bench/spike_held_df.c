/*
 * Spike check (v3-status item 30, not built by CMake): a second free of a
 * held (cached) block is refused, from the owner and from another CPU.
 * gcc -O2 -Ibuddy -Ilockfree -Iplatform -Ibuild/held -o df
 * bench/spike_held_df.c \
 *   build/held/buddy/liblf_buddy_units.a
 * build/held/lockfree/liblfalloc_lockfree.a \
 *   build/held/liblfalloc_platform_user.a -lpthread
 */
#include <stdio.h>
#include <stdlib.h>
#include "buddy.h"
#define FR 4096ull
int main(void)
{
	struct buddy_region r = { 0x10000000ull, 4096 * FR };
	size_t ms = buddy_meta_size(&r, 1, 2);
	void *meta = aligned_alloc(64, (ms + 63) & ~63ul);
	struct buddy_zone *z;
	int bad = 0;
	if (buddy_zone_init(&z, meta, ms, &r, 1, 2) != BUDDY_OK)
		return 2;
	struct buddy_cpu *c0 = buddy_zone_cpu(z, 0), *c1 = buddy_zone_cpu(z, 1);
	for (unsigned k = 0; k < 5; k++) {
		uint64_t a[64], x = 0;
		unsigned n = 0;
		do {
			if (buddy_alloc(c0, k, &a[n]) != BUDDY_OK)
				return 3;
			x = a[n++];
		} while (((x - r.base) / FR) % 32 == 0 && n < 64);
		int r1 = buddy_free(c0, x, k), r2 = buddy_free(c0, x, k),
		    r3 = buddy_free(c1, x, k);
		int r4 = k ? buddy_free(c1, x + FR, 0) : 0;
		uint64_t y;
		int r5 = buddy_alloc(c0, k, &y);
		int r6 = buddy_free(c1, y, k), r7 = buddy_free(c1, y, k),
		    r8 = buddy_free(c0, y, k);
		printf("order %u: x %% 32 = %llu free %d, again (same CPU) %d, "
		       "other CPU %d, a tail %d; pop %s; free elsewhere %d, "
		       "again %d/%d\n",
		       k, (unsigned long long)(((x - r.base) / FR) % 32), r1,
		       r2, r3, r4, y == x ? "same block" : "another block", r6,
		       r7, r8);
		bad |= r1 != 0 || r2 != BUDDY_EDOUBLE || r3 != BUDDY_EDOUBLE ||
		       r5 != 0 || r6 != 0 || r7 != BUDDY_EDOUBLE ||
		       r8 != BUDDY_EDOUBLE || (k && r4 == 0);
		for (unsigned i = 0; i + 1 < n; i++)
			if (buddy_free(c0, a[i], k))
				bad = 1;
	}
	buddy_zone_drain_all(c0);
	uint64_t f;
	int inv = buddy_zone_check(z, true, &f);
	printf("EDOUBLE = %d; check after drain_all %d; %s\n", BUDDY_EDOUBLE,
	       inv, bad ? "BAD" : "ok");
	return bad || inv;
}
