/*
 * vas.h: a virtual address range allocator on a B+-tree read with
 * optimistic lock coupling.
 *
 * A vas manages [base, base + size) in units of a quantum (a power of two,
 * e.g. 4 KiB). Every address of the region belongs to exactly one range,
 * allocated (with a user tag) or free; adjacent free ranges are always
 * coalesced. The ranges live in a B+-tree keyed by start address whose
 * nodes carry version locks (lockfree/lf_vlock.h): lookups descend
 * optimistically, reading node fields with atomic loads and validating
 * versions (V. Leis, M. Haubenschild, T. Neumann, "Optimistic Lock
 * Coupling", IEEE Data Eng. Bull. 42(1), 2019), so a lookup writes nothing
 * that other CPUs read, but the epoch announcement in its own context. Writers (alloc, alloc_at, free) are serialized by
 * one writer lock, as Linux's maple tree serializes its writers while its
 * readers run under RCU; a writer version-locks each node it changes, so
 * readers see each node either before or after a change. Finding a fit is
 * O(log n): inner nodes keep the largest free range below each child
 * (first fit by address) and a second tree indexes free ranges by size
 * (best fit). docs/design.md ("The virtual address space allocator") gives
 * the invariants and the argument.
 *
 * Nodes (VAS_NODE_SIZE bytes each) come from a node source given at
 * creation (page-aligned memory in userspace, buddy frames in the kernel).
 * A node taken off the tree goes to the tree's own node freelist, marked
 * obsolete, its version kept growing across reuse, so a stale reader fails
 * validation; only nodes beyond a high-water mark go back to the source,
 * after an epoch grace period (lockfree/lf_epoch.h).
 *
 * Freestanding: <stdint.h>, <stddef.h>, <stdbool.h> and lockfree/.
 *
 * Example: examples/vas_example.c (node source, contexts as epoch
 * participants, allocation, lookup, partial free, error codes).
 *
 * Synchronization table:
 *   vas_lookup, vas_iterate, vas_stats   with anything, on any context
 *   vas_alloc, vas_alloc_at, vas_free    with anything (writers take turns)
 *   vas_ctx_register/unregister          with anything
 *   vas_create, vas_destroy, vas_check   alone (check: no writer running)
 * A struct vas_ctx is used by one thread at a time (a CPU, or a thread),
 * and its memory stays until vas_destroy (stats walk every context).
 */
#ifndef VAS_H
#define VAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_atomic.h"
#include "lf_epoch.h"
#include "lf_platform.h"
#include "lf_spin.h"
#include "lf_vlock.h"

#define VAS_NODE_SIZE 4096 /* bytes a node source hands out per node */
#define VAS_MAX_KEYS 160   /* entries per node at most */
#define VAS_MIN_KEYS 3     /* the smallest node capacity (tests) */
/*
 * Levels at most: every node but the root has two children or more, so a
 * tree of fewer than 2^33 entries (at most 2^32 quanta) is under 35.
 */
#define VAS_MAX_HEIGHT 40

enum vas_err {
	VAS_OK = 0,
	VAS_ENOMEM = -1,    /* the node source failed; nothing changed */
	VAS_ENOSPC = -2,    /* no free range fits */
	VAS_EINVAL = -3,    /* size 0, bad alignment or policy, NULL */
	VAS_EALIGN = -4,    /* address or size not a multiple of the quantum */
	VAS_ERANGE = -5,    /* outside the region */
	VAS_ENOTALLOC = -6, /* free of what is not (wholly) allocated */
	VAS_EBUSY = -7,     /* alloc_at over something allocated */
	VAS_ENOENT = -8,    /* lookup: nothing allocated there */
	VAS_ENOTREG = -9,   /* the context is not registered */
};
#define VAS_NERR 10

enum vas_policy {
	VAS_FIRST_FIT = 0, /* the lowest address that fits */
	VAS_BEST_FIT = 1,  /* the smallest free range that fits */
};

/*
 * Where nodes come from: get() returns VAS_NODE_SIZE bytes aligned to 64
 * (NULL when out of memory); put() takes one back.
 */
struct vas_node_source {
	void *(*get)(void *arg);
	void (*put)(void *arg, void *node);
	void *arg;
};

/* A range, as lookups and iteration report it. */
struct vas_range {
	uint64_t start; /* address */
	uint64_t size;  /* bytes */
	uintptr_t tag;  /* the allocation's tag; 0 for a free range */
	bool allocated;
};

struct vas_stats {
	uint64_t ranges;        /* allocated ranges */
	uint64_t free_ranges;   /* free ranges */
	uint64_t free_bytes;
	uint64_t largest_free;  /* bytes */
	uint64_t nodes;         /* nodes in the two trees */
	uint64_t nodes_free;    /* nodes on the freelist */
	uint64_t nodes_retired; /* handed back to the source (after grace) */
	uint64_t height;        /* of the address tree */
	uint64_t restarts;      /* optimistic restarts, all contexts */
	uint64_t rejected[VAS_NERR]; /* calls refused, by -error code */
};

struct vas_node;

/* One B+-tree (the vas has two). Fields: see vaspace/vas_tree.c. */
struct vas_tree {
	struct lf_vlock rootlock; /* (a) guards the root pointer */
	lf_atomic_ptr root;       /* (v) by rootlock */
	uint32_t cap;             /* (i) entries per node */
	bool augment;             /* (i) keep the largest free below */
	uint32_t height;          /* (w) levels, leaves included */
	uint64_t nodes;           /* (w) */
	struct vas *vas;          /* (i) */
};

/* A thread's or CPU's handle on a vas. */
struct vas_ctx {
	struct lf_epoch_record rec; /* epoch participant */
	struct vas *vas;            /* (i) */
	lf_atomic_u64 restarts;     /* (o) written by the owner only */
	lf_atomic_u64 rejected[VAS_NERR]; /* (o) */
	struct vas_ctx *next;       /* (i) list of contexts, for stats */
};

struct vas {
	struct lf_spin wlock LF_CACHE_ALIGNED; /* (a) the writer lock */
	struct vas_tree addr;  /* ranges by start (augmented) */
	struct vas_tree size;  /* free ranges by (length, start) */
	uint64_t base, nq;     /* (i) region, in bytes and in quanta */
	unsigned qshift;       /* (i) log2 of the quantum */
	unsigned sshift;       /* (i) bits of a start in a size key */
	struct vas_node_source src; /* (i) */
	struct vas_node *freelist;  /* (w) obsolete nodes for reuse */
	uint64_t nfree;             /* (w) nodes on it */
	uint64_t high_water;        /* (i) more go back to the source */
	struct vas_node *reserve;   /* (w) nodes set aside for a write */
	uint64_t nreserve;          /* (w) */
	lf_atomic_u64 retired;      /* (a) nodes given back to the source */
	lf_atomic_u64 pending_put;  /* (a) retired, grace period not over */
	lf_atomic_u64 ranges;       /* (v) allocated ranges (stats) */
	lf_atomic_u64 free_ranges;  /* (v) */
	lf_atomic_u64 free_q;       /* (v) free quanta */
	lf_atomic_ptr ctxs;         /* (a) push-only list of contexts */
	struct vas_ctx *wctx;       /* (w) the writer's context */
	struct lf_epoch_domain epoch;
	struct lf_epoch_record own; /* create and destroy's participant */
};

/*
 * Create a vas over [base, base + size): both multiples of quantum (a
 * power of two), size / quantum below 2^32, base + size not wrapping.
 * node_keys is the entries per node (VAS_MIN_KEYS to VAS_MAX_KEYS; 0 for
 * the most); small values make tests split and merge nodes often.
 * high_water: nodes kept on the freelist before any goes back to the
 * source. The empty tree needs two nodes: VAS_ENOMEM if the source fails.
 */
int vas_create(struct vas *v, uint64_t base, uint64_t size, uint64_t quantum,
	       const struct vas_node_source *src, uint32_t node_keys,
	       uint64_t high_water);

/*
 * Give every node back to the source. No other call may run, and every
 * context must be unregistered first (VAS_EINVAL otherwise).
 */
int vas_destroy(struct vas *v);

/* Register a zero-filled (or unregistered) context with v. */
int vas_ctx_register(struct vas *v, struct vas_ctx *c);
int vas_ctx_unregister(struct vas_ctx *c);

/* Allocate size bytes aligned to align (a power of two; 0: the quantum). */
int vas_alloc(struct vas_ctx *c, uint64_t size, uint64_t align,
	      enum vas_policy policy, uintptr_t tag, uint64_t *addr);

/* Allocate exactly [addr, addr + size); VAS_EBUSY if any of it is not free. */
int vas_alloc_at(struct vas_ctx *c, uint64_t addr, uint64_t size,
		 uintptr_t tag);

/*
 * Free [addr, addr + size), which must lie inside one allocated range: its
 * whole, head, tail or middle (the rest stays allocated with its tag, as
 * munmap splits a mapping). The freed part coalesces with free neighbours.
 */
int vas_free(struct vas_ctx *c, uint64_t addr, uint64_t size);

/* The allocated range holding addr; writes no tree memory. */
int vas_lookup(struct vas_ctx *c, uint64_t addr, struct vas_range *out);

/*
 * Call fn for every range (allocated and free) that overlaps [a, b), in
 * address order, until fn returns false. Each range reported was a range
 * of the vas at some moment during the call; the sequence is not one
 * atomic snapshot when writers run at the same time.
 */
int vas_iterate(struct vas_ctx *c, uint64_t a, uint64_t b,
		bool (*fn)(const struct vas_range *r, void *arg), void *arg);

void vas_stats(struct vas *v, struct vas_stats *out);

/*
 * The structural check (docs/design.md, invariants A1-A8): 0, or the
 * number of the first invariant found broken. Takes the writer lock.
 */
int vas_check(struct vas *v, uint64_t *where);

const char *vas_strerror(int err);

#endif /* VAS_H */
