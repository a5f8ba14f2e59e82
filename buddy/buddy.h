/*
 * buddy.h: a lock-free buddy allocator of physical page frames.
 *
 * A zone manages one or more discontiguous regions of 4 KiB frames (a
 * physical memory map has holes) and hands out naturally aligned blocks of
 * 2^order frames, order 0 to BUDDY_MAX_ORDER (4 GiB): an order-9 block starts
 * on a 2 MiB boundary in physical address. The free blocks of each order sit
 * on one lock-free stack (lockfree/lf_stack.h), or, one per order and CPU
 * context, in that context's spare slot, where any context can still claim
 * them (small orders: a split's halves and a free's block wait there for the
 * context's next allocation, which takes them without touching a shared
 * stack head); a per-frame atomic state word is the authority on what a
 * frame is, so a stack or slot may name a block no longer free after a
 * concurrent merge or split, and such entries are filtered when looked at.
 * Freeing coalesces with free buddies, lock-free, except that a free,
 * outside the per-CPU caches, of the block its context allocated last
 * leaves it unmerged, and that context's next allocation of the order
 * takes it back first (deferred coalescing: an alloc+free pair on a
 * coalesced zone then splits, merges and touches no shared stack head);
 * allocation splits. After buddy_zone_drain_all() (or buddy_zone_coalesce()
 * with the caches empty) at quiescence the zone is fully coalesced, as a locked
 * buddy would be, and an allocation never fails while merging could
 * satisfy it.
 * The design, its numbered invariants and its memory-ordering argument are in
 * docs/design.md ("The buddy allocator"); the sources cite them by number.
 *
 * Example: examples/buddy_example.c (regions from a memory map, metadata
 * sizing, per-CPU contexts, allocation, free, error codes).
 *
 * Per-CPU caches hold blocks of orders 0 to BUDDY_CACHE_ORDERS - 1, in the
 * style of x15's per-CPU page pools: the common path writes only the CPU's
 * own cache lines and the block's own state word, one atomic
 * read-modify-write per alloc + free pair where the platform has a heavy
 * barrier (buddy_cache.c); refill and drain move batches. No memory is
 * stranded in caches: an allocation that would fail drains every CPU's
 * cache first.
 *
 * Metadata: the zone, its stacks, its per-CPU contexts and two per-frame
 * arrays (a 16-bit state word and a 32-bit stack link) live in memory the
 * caller hands to buddy_zone_init(), sized by buddy_meta_size(): 6 bytes per
 * frame (and per padding index: fewer than 64 before each region, so that
 * per-CPU carves own whole lines of state words and no line holds two
 * regions) plus a fixed part per
 * zone and per CPU (docs/design.md 2.1). The allocator never reads or
 * writes the frames it manages, so they may be unmapped.
 *
 * Freestanding: <stdint.h>, <stddef.h>, <stdbool.h> and the lockfree/ core.
 *
 * Synchronization table: every call may run at the same time as any other
 * call on the same zone, with these exceptions:
 *   buddy_zone_init      before anything else touches the zone;
 *   a struct buddy_cpu   used by one thread at a time (its CPU, or the
 *                        userspace thread that plays that CPU); other CPUs
 *                        only drain it, under its cache lock;
 *   buddy_zone_check     at quiescence (no call in flight), e.g. tests.
 * Every call is lock-free except for the exclusion around a CPU's cache
 * (buddy_cache.c): its owner and a context draining it wait for each other
 * for a few loads and stores; a drain happens only when memory runs out,
 * on buddy_cpu_drain() and buddy_zone_drain_all(), and on an alloc_at of a
 * cached range.
 *
 * The kernel contract.
 *   Interrupts. Every call may run with interrupts disabled: none sleeps,
 *   none allocates, none calls out of the allocator but the platform shim.
 *   A call may run in an interrupt handler only on a context that the
 *   interrupted code of that CPU cannot be using (give interrupt context a
 *   struct buddy_cpu of its own, or disable interrupts around the thread's
 *   calls on the shared one): a handler that drains or uses the cache of
 *   the context its CPU was inside would wait for itself. Never from an
 *   NMI, which cannot be excluded that way.
 *   Preemption. A struct buddy_cpu is used by one thread at a time: in a
 *   preemptible kernel, disable preemption (or pin the thread and hold the
 *   context) for each call. A thread preempted inside a call holds no lock
 *   that others need to make progress, but others may wait on it: a
 *   drainer of its cache, and an allocation that would fail, which retries
 *   while any context is in flight (exact ENOMEM). Keep preemption off.
 *   Lock order. The allocator takes no lock of any other allocator and
 *   calls back into nothing: it is a leaf. Calling it with another
 *   allocator's lock held (a vaspace writer, a kmem depot, a node source
 *   that takes frames) is safe; nothing may call into another allocator
 *   from inside it.
 *
 * Over units (version 3: lf_buddy_units, built with BUDDY_CORE_SHIFT 5;
 * docs/design.md 2.7, docs/v3-status.md) the contract above holds with
 * these differences. Orders 0-4 come from units of 32 frames that a CPU
 * reserves (one CAS per alloc and per free on the unit's word), and other
 * CPUs steal from a reservation or take its empty units back by CAS,
 * without waiting for its owner. Per-CPU caches hold blocks of orders 0-4
 * (docs/v3-status.md item 37: up to 16 an order), which stay allocated in
 * their unit's word with a bit set in the unit's cached mask: a free
 * checks the word, sets the bit (a second free of a cached block, from
 * any CPU, finds it set: BUDDY_EDOUBLE, nothing changed) and pushes; an
 * allocation pops first and clears the bit; a refill after the slow path
 * takes up to 7 more blocks of the order from the reservation in one CAS
 * and sets their bits; a full order drains its oldest half, one CAS per
 * unit word. The cache lock, the heavy barrier and the exclusion between
 * an owner and a drainer are version 2's (above): a failing allocation
 * drains every CPU's cache, so ENOMEM is exact over the caches too, and
 * buddy_alloc_at() takes a cached range as free (drained). The rules for
 * interrupts and preemption
 * stay. ENOMEM is exact over both levels: a reserved unit with every
 * frame free counts as free memory at every order it could serve.
 * buddy_cpu_drain() drains the cache and gives the reservation up but
 * keeps one unit whose frames are all free (as version 2 keeps its last
 * pair's block unmerged): free memory for every other CPU as above,
 * taken back by buddy_zone_drain_all(), after which the zone is fully
 * coalesced. Statistics report reserved units' free frames and the
 * cached blocks as cached_* (cached_blocks for orders 0-3). Metadata:
 * 28 bytes per unit of 32 frames (0.875 a frame) plus the fixed part
 * (about 1.2 KiB a CPU).
 */
#ifndef BUDDY_H
#define BUDDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_atomic.h"
#include "lf_platform.h"
#include "lf_stack.h"

#define BUDDY_FRAME_SHIFT 12
#define BUDDY_FRAME_SIZE ((uint64_t)1 << BUDDY_FRAME_SHIFT)
#define BUDDY_MAX_ORDER 20 /* 2^20 frames: 4 GiB */
#define BUDDY_ORDERS (BUDDY_MAX_ORDER + 1)
#define BUDDY_MAX_REGIONS 32
/* Frames per zone: indices are 32-bit and LF_STACK_NIL is reserved. */
#define BUDDY_MAX_FRAMES ((uint64_t)UINT32_MAX)

#define BUDDY_CACHE_ORDERS 4 /* orders 0-3 are cached per CPU */
#define BUDDY_CACHE_SLOTS 64 /* blocks per order and CPU at most */
#define BUDDY_CACHE_BATCH 16 /* blocks one overflow drain moves */

/*
 * Error codes: each class of bad input has its own, and a call that returns
 * one changed nothing.
 */
enum buddy_err {
	BUDDY_OK = 0,
	BUDDY_ENOMEM = -1,  /* no free block can satisfy the request */
	BUDDY_EINVAL = -2,  /* bad argument: order, size, NULL, config */
	BUDDY_ERANGE = -3,  /* address (or block) outside every region */
	BUDDY_EALIGN = -4,  /* address not aligned to the frame or order */
	BUDDY_EORDER = -5,  /* free with another order than allocated */
	BUDDY_EDOUBLE = -6, /* free of a block that is not allocated */
	BUDDY_ETAIL = -7,   /* free of a frame inside an allocated block */
	BUDDY_EBUSY = -8,   /* alloc_at: part of the range is allocated */
	BUDDY_ENOSPC = -9,  /* init: metadata area too small */
	/*
	 * Not returned any more. Version 3's build over units
	 * (lf_buddy_units) refused with it, until it honoured them, the
	 * calls below a unit (alloc_below, alloc_at, runs of part of a unit:
	 * docs/v3-status.md, items 9 and 12). Kept so that BUDDY_NERR and
	 * the indices of buddy_stats.rejected_by stay as they are.
	 */
	BUDDY_ENOTSUP = -10,
};
#define BUDDY_NERR 11 /* -BUDDY_ENOTSUP + 1: statistics index by -err */

/* A region of physical memory: base and size in bytes, frame-aligned. */
struct buddy_region {
	uint64_t base;
	uint64_t size;
};

/* Statistics, summed over every CPU context (a snapshot, not atomic). */
struct buddy_stats {
	uint64_t total_frames;  /* managed frames */
	uint64_t free_frames;   /* in free blocks, caches excluded */
	uint64_t cached_frames; /* in per-CPU caches */
	uint64_t free_blocks[BUDDY_ORDERS]; /* free blocks of each order */
	uint64_t cached_blocks[BUDDY_CACHE_ORDERS];
	uint64_t allocs;   /* successful allocations (blocks) */
	uint64_t frees;    /* successful frees (blocks) */
	uint64_t failed;   /* allocations that returned ENOMEM/EBUSY */
	uint64_t rejected; /* calls refused for bad input, all classes */
	uint64_t rejected_by[BUDDY_NERR]; /* by -error code */
	uint64_t merges;                  /* buddy pairs coalesced */
	uint64_t splits;                  /* blocks split in two */
	uint64_t stale;                   /* stale stack entries dropped */
	uint64_t moved;                   /* misplaced stack entries moved */
	uint64_t refills;                 /* cache refills */
	uint64_t drains;                  /* cache drains (own and remote) */
	uint64_t sweeps;                  /* stack sweeps on the slow path */
};

struct buddy_zone;
struct buddy_cpu;

/* Fixed metadata besides the 6 bytes per frame (for docs and tests). */
#define BUDDY_META_FRAME_BYTES 6

/*
 * Bytes of metadata buddy_zone_init() needs for these regions and CPUs;
 * 0 if the regions are invalid (unaligned, overlapping, unsorted, empty,
 * too many frames) or ncpus is 0.
 */
size_t buddy_meta_size(const struct buddy_region *regions, unsigned nregions,
		       unsigned ncpus);

/*
 * Set up a zone in meta (aligned to 64 bytes, at least buddy_meta_size()
 * bytes) with every frame of the regions free, fully coalesced. Regions are
 * sorted by base and do not overlap. *zp is the zone, inside meta.
 */
int buddy_zone_init(struct buddy_zone **zp, void *meta, size_t meta_size,
		    const struct buddy_region *regions, unsigned nregions,
		    unsigned ncpus);

/* The context of CPU cpu (0 <= cpu < ncpus), or NULL. */
struct buddy_cpu *buddy_zone_cpu(struct buddy_zone *z, unsigned cpu);

/* Allocate a block of 2^order frames; its physical address in *addr. */
int buddy_alloc(struct buddy_cpu *c, unsigned order, uint64_t *addr);

/*
 * Allocate a block that ends at or below limit (a DMA32-style zone:
 * limit = 4 GiB). Slower than buddy_alloc(): it may pop and push back
 * blocks above the limit.
 */
int buddy_alloc_below(struct buddy_cpu *c, unsigned order, uint64_t limit,
		      uint64_t *addr);

/*
 * Allocate exactly [addr, addr + 2^order frames) (device memory, firmware
 * tables). BUDDY_EBUSY if any frame of it is allocated; caches are drained
 * if the range is held in one.
 */
int buddy_alloc_at(struct buddy_cpu *c, uint64_t addr, unsigned order);

/*
 * Allocate a contiguous run of nframes frames (any count up to
 * 2^BUDDY_MAX_ORDER): a block of the next order is taken and its tail given
 * back. Free it with buddy_free_run() and the same count.
 */
int buddy_alloc_run(struct buddy_cpu *c, uint64_t nframes, uint64_t *addr);

/* Free a block allocated with this order. */
int buddy_free(struct buddy_cpu *c, uint64_t addr, unsigned order);

/* Free a run from buddy_alloc_run(); checks every block before freeing. */
int buddy_free_run(struct buddy_cpu *c, uint64_t addr, uint64_t nframes);

/*
 * Turn this CPU's cache on (the default) or off; off, it is drained and
 * every call of this context goes to the lock-free stacks (for a context
 * that cannot keep memory, and to measure the core alone).
 */
void buddy_cpu_cache_enable(struct buddy_cpu *c, bool on);

/* Give this CPU's cached blocks back to the free stacks (they coalesce). */
void buddy_cpu_drain(struct buddy_cpu *c);

/*
 * Drain every CPU's cache (takes each cache lock in turn), then
 * buddy_zone_coalesce().
 */
void buddy_zone_drain_all(struct buddy_cpu *c);

/*
 * Merge every block a free left unmerged (deferred coalescing: a free of a
 * block outside the caches does not merge it with its free buddy until the
 * same context frees another block of that order; docs/design.md, B8). At
 * quiescence, afterwards, the zone is fully coalesced (with caches
 * drained). buddy_zone_drain_all() and the allocation slow path call it;
 * exposed for tests, for measuring fragmentation and for a kernel's idle
 * loop.
 */
void buddy_zone_coalesce(struct buddy_cpu *c);

/*
 * Re-file every stack entry: drop stale ones and move misplaced ones to the
 * stack of their block's order (done on the allocation slow path; exposed
 * for tests and for a kernel's idle loop).
 */
void buddy_zone_sweep(struct buddy_cpu *c);

void buddy_zone_stats(struct buddy_zone *z, struct buddy_stats *out);

/*
 * Verify every invariant of docs/design.md over the whole zone, at
 * quiescence; coalesced: also full coalescing, which holds after
 * buddy_zone_drain_all() (without it, B8: every pair of free buddies has
 * a member a free left unmerged on purpose). Returns 0, or the number of the
 * first invariant found broken (B1 is 1, ...); *frame, if not NULL, gets a
 * frame index involved. Uses a spare bit of each state word as a mark, so it is
 * not read-only.
 */
int buddy_zone_check(struct buddy_zone *z, bool coalesced, uint64_t *frame);

/* What a frame is, as buddy_zone_frame() reports it. */
enum buddy_frame_kind {
	BUDDY_FRAME_FREE = 1,   /* head of a free block */
	BUDDY_FRAME_ALLOC = 2,  /* head of an allocated block */
	BUDDY_FRAME_CACHED = 3, /* head of a block in a per-CPU cache */
	BUDDY_FRAME_TAIL = 4,   /* inside a larger block */
	BUDDY_FRAME_BUSY = 5,   /* head of a block some call is changing */
};

/*
 * The state of the frame at addr: *kind (enum buddy_frame_kind) and, for a
 * head, *order. A snapshot; BUDDY_ERANGE or BUDDY_EALIGN for a bad addr.
 */
int buddy_zone_frame(struct buddy_zone *z, uint64_t addr, unsigned *kind,
		     unsigned *order);

/* The text of an error code, for messages. */
const char *buddy_strerror(int err);

#endif /* BUDDY_H */
