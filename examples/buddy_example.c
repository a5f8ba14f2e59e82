/*
 * buddy_example.c: setting up and using the lock-free buddy allocator
 * (buddy/buddy.h), as a kernel's early memory code would.
 *
 *  1. Regions from a memory map: the usable RAM entries, trimmed to whole
 *     4 KiB frames, sorted, without holes inside a region.
 *  2. Metadata sizing: buddy_meta_size() for those regions and CPUs; the
 *     memory comes from the caller (a kernel takes it from the map itself
 *     before handing the rest over), 64-byte aligned.
 *  3. Per-CPU contexts: buddy_zone_cpu(z, cpu), each used by one thread at
 *     a time; here one thread per "CPU".
 *  4. Allocation and free of blocks of 2^order frames; error handling: every
 *     bad call returns its own negative code and changes nothing.
 *
 * The allocator never touches the frames it manages, so the "physical"
 * addresses below are just numbers. ctest runs it (examples/CMakeLists.txt,
 * label example).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "buddy.h"
#include "platform_user.h"

#define NCPUS 2

/* A memory map as firmware reports it (e820-style): base, length, usable. */
static const struct {
	uint64_t base, len;
	int usable;
} memmap[] = {
	{ 0x00000000, 0x0009fc00, 1 }, /* low memory, ends mid-frame */
	{ 0x000f0000, 0x00010000, 0 }, /* BIOS */
	{ 0x00100000, 0x07f00000, 1 }, /* 1 MiB - 128 MiB */
	{ 0x08000000, 0x00100000, 0 }, /* a hole: device memory */
	{ 0x08100000, 0x03f00000, 1 }, /* 129 MiB - 192 MiB */
};

static int fail(const char *what, int rc)
{
	fprintf(stderr, "buddy_example: %s: %s\n", what, buddy_strerror(rc));
	exit(1);
}

struct worker {
	struct buddy_zone *zone;
	unsigned cpu;
	uint64_t allocated;
};

/* One CPU's work: allocate blocks of mixed orders, then free them all. */
static void *work(void *arg)
{
	struct worker *w = arg;
	lf_platform_user_set_cpu(w->cpu); /* userspace: who plays which CPU */
	struct buddy_cpu *c = buddy_zone_cpu(w->zone, w->cpu);
	uint64_t addr[64];
	for (unsigned i = 0; i < 64; i++) {
		int rc = buddy_alloc(c, i % 4, &addr[i]); /* 4 KiB - 32 KiB */
		if (rc != BUDDY_OK)
			fail("buddy_alloc", rc);
		w->allocated += BUDDY_FRAME_SIZE << (i % 4);
	}
	for (unsigned i = 0; i < 64; i++) {
		int rc = buddy_free(c, addr[i], i % 4);
		if (rc != BUDDY_OK)
			fail("buddy_free", rc);
	}
	return NULL;
}

int main(void)
{
	/* 1. Regions: usable entries rounded inwards to whole frames. */
	struct buddy_region rg[BUDDY_MAX_REGIONS];
	unsigned nr = 0;
	for (size_t i = 0; i < sizeof(memmap) / sizeof(memmap[0]); i++) {
		uint64_t lo = (memmap[i].base + BUDDY_FRAME_SIZE - 1) &
			      ~(BUDDY_FRAME_SIZE - 1);
		uint64_t hi = (memmap[i].base + memmap[i].len) &
			      ~(BUDDY_FRAME_SIZE - 1);
		if (memmap[i].usable && hi > lo && nr < BUDDY_MAX_REGIONS)
			rg[nr++] = (struct buddy_region){ lo, hi - lo };
	}

	/* 2. Metadata: the size for these regions and CPUs, 64-byte aligned. */
	size_t need = buddy_meta_size(rg, nr, NCPUS);
	if (need == 0)
		fail("buddy_meta_size", BUDDY_EINVAL);
	void *meta = aligned_alloc(64, (need + 63) & ~(size_t)63);
	struct buddy_zone *z;
	int rc = buddy_zone_init(&z, meta, need, rg, nr, NCPUS);
	if (rc != BUDDY_OK)
		fail("buddy_zone_init", rc);

	/* 3. Per-CPU contexts, one thread each. */
	pthread_t t[NCPUS];
	struct worker w[NCPUS];
	for (unsigned i = 0; i < NCPUS; i++) {
		w[i] = (struct worker){ .zone = z, .cpu = i };
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	for (unsigned i = 0; i < NCPUS; i++)
		pthread_join(t[i], NULL);

	/* 4. Special requests and errors, on CPU 0 (this thread). */
	struct buddy_cpu *c = buddy_zone_cpu(z, 0);
	uint64_t dma, huge;
	if ((rc = buddy_alloc_below(c, 0, 16u << 20, &dma)) != BUDDY_OK)
		fail("buddy_alloc_below", rc); /* ISA DMA: below 16 MiB */
	if ((rc = buddy_alloc(c, 9, &huge)) != BUDDY_OK)
		fail("buddy_alloc order 9", rc); /* 2 MiB, 2 MiB aligned */
	if ((rc = buddy_free(c, huge, 8)) != BUDDY_EORDER)
		fail("free with the wrong order must be EORDER", rc);
	if ((rc = buddy_free(c, huge + 4096, 0)) != BUDDY_ETAIL)
		fail("free inside a block must be ETAIL", rc);
	if ((rc = buddy_free(c, 0x08000000, 0)) != BUDDY_ERANGE)
		fail("free in the hole must be ERANGE", rc);
	buddy_free(c, huge, 9);
	if ((rc = buddy_free(c, huge, 9)) != BUDDY_EDOUBLE)
		fail("a double free must be EDOUBLE", rc);
	buddy_free(c, dma, 0);

	/* Back to the start: every frame free, the zone fully coalesced. */
	buddy_zone_drain_all(c);
	struct buddy_stats st;
	buddy_zone_stats(z, &st);
	if (st.free_frames != st.total_frames ||
	    (rc = buddy_zone_check(z, true, NULL)) != 0) {
		fprintf(stderr, "buddy_example: zone not whole (check %d)\n",
			rc);
		return 1;
	}
	printf("buddy_example: %u regions, %" PRIu64 " frames, %zu bytes of "
	       "metadata; %" PRIu64 " KiB allocated and freed by %d CPUs; "
	       "%" PRIu64 " bad calls rejected\n",
	       nr, st.total_frames, need,
	       (w[0].allocated + w[1].allocated) >> 10, NCPUS, st.rejected);
	free(meta);
	return 0;
}
