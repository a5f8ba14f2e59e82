/*
 * vas.h: a virtual address range allocator on a B+-tree read with
 * optimistic lock coupling.
 *
 * A vas manages [base, base + size) in units of a quantum (a power of two,
 * e.g. 4 KiB). Every address of the region belongs to exactly one range,
 * allocated (with a user tag) or free; adjacent free ranges are coalesced
 * (with caching on, free space may be reported as several free ranges side
 * by side: vas_set_caching). The ranges live in a B+-tree keyed by start
 * address whose nodes carry version locks (lockfree/lf_vlock.h): lookups
 * descend optimistically, reading node fields with atomic loads and validating
 * versions (V. Leis, M. Haubenschild, T. Neumann, "Optimistic Lock
 * Coupling", IEEE Data Eng. Bull. 42(1), 2019), so a lookup writes nothing
 * that other CPUs read, but the epoch announcement in its own context. Writers
 * (alloc, map, replace, unmap, protect, free) are serialized by one writer
 * lock, as Linux's maple tree serializes its writers while its readers run
 * under RCU; a writer version-locks each node it changes and keeps every one
 * locked until the whole call is done (two-phase locking), so a reader sees the
 * vas before or after a call, never part of one: a replace of [a, b) over
 * several ranges is one step for lookups. With per-context caching on
 * (vas_set_caching), a free of a small whole range and a small allocation
 * are usually leaf-local: one leaf locked, under the shared side of a
 * big-reader exclusion whose exclusive side is the writer lock, so writers
 * of small ranges on different CPUs do not take turns (docs/design.md
 * 3.3). Finding a fit is O(log n): inner
 * nodes keep a bound on the largest free range below each child (first fit by
 * address; a bound a search found too high is lowered) and a second tree
 * indexes free ranges by size (best fit). The invariants (A1-A11, W1, X1) and
 * the argument are in docs/design.md section 3; the sources cite them by
 * number.
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
 *   vas_lookup, vas_lookup_n, vas_find,  with anything, on any context
 *   vas_next, vas_prev, vas_iterate,
 *   vas_stats
 *   vas_alloc, vas_alloc_at, vas_free,   with anything (writers take turns,
 *   vas_map, vas_replace, vas_unmap,     but for leaf-local allocs and
 *   vas_protect, vas_set_caching         frees with caching on)
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
 * Quanta in a vas: below 2^VAS_MAX_QBITS (a 57-bit LA57 user space is
 * 2^45 pages of 4 KiB). Levels at most: every node but the root has two
 * children or more, so a tree of at most 2^47 entries is under 49.
 */
#define VAS_MAX_QBITS 47
#define VAS_MAX_HEIGHT 52

/* Attributes of an allocated range: 16 bits (protection, flags). */
#define VAS_ATTR_BITS 16
#define VAS_ATTR_MASK ((1u << VAS_ATTR_BITS) - 1)

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
	VAS_EATTR = -10,    /* attribute bits outside VAS_ATTR_MASK */
	VAS_EWINDOW = -11,  /* placement window empty or outside the region */
};
#define VAS_NERR 12

/*
 * Refusals in normal operation (no room, a busy range, the node source
 * out of memory, nothing mapped where find looks), as opposed to rejected
 * bad input (every other code): vas_stats counts them apart.
 */
static inline bool vas_err_is_refusal(int err)
{
	return err == VAS_ENOSPC || err == VAS_EBUSY || err == VAS_ENOMEM ||
	       err == VAS_ENOENT;
}

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
	uint32_t attr; /* its attributes (VAS_ATTR_MASK); 0 if free */
};

struct vas_stats {
	uint64_t ranges;      /* allocated ranges */
	uint64_t free_ranges; /* free ranges */
	uint64_t free_bytes;
	uint64_t largest_free;  /* bytes */
	uint64_t nodes;         /* nodes in the two trees */
	uint64_t nodes_free;    /* nodes on the freelist */
	uint64_t nodes_retired; /* handed back to the source (after grace) */
	uint64_t height;        /* of the address tree */
	uint64_t restarts;      /* optimistic restarts, all contexts */
	uint64_t commits;       /* writes that changed the vas */
	uint64_t local;         /* of them leaf-local (caching), all contexts */
	uint64_t refused[VAS_NERR];  /* normal refusals (vas_err_is_refusal) */
	uint64_t rejected[VAS_NERR]; /* bad input, by -error code */
};

struct vas_node;

/*
 * The writer's last path down a tree (vaspace/vas_tree.c): the nodes, the
 * child taken at each inner level, and the leaf's fences [lo, hi). A
 * descent for a key inside the fences reuses it while the tree's shape
 * count has not moved since (no split, merge, borrow or root change: the
 * inner nodes on the path are as they were), searching only the leaf.
 */
struct vas_finger {
	struct vas_node *n[VAS_MAX_HEIGHT]; /* (w) */
	uint32_t i[VAS_MAX_HEIGHT];         /* (w) */
	uint32_t depth;                     /* (w) index of the leaf */
	uint64_t lo, hi;                    /* (w) the leaf's fences */
	bool has_lo, has_hi;                /* (w) */
	uint64_t shape;                     /* (w) tree shape when taken */
};

/* One B+-tree (the vas has two). Fields: see vaspace/vas_tree.c. */
struct vas_tree {
	struct lf_vlock rootlock; /* (a) guards the root pointer */
	lf_atomic_ptr root;       /* (v) by rootlock */
	uint32_t cap;             /* (i) entries per node */
	bool augment;             /* (i) keep the largest free below */
	uint32_t height;          /* (w) levels, leaves included */
	uint64_t nodes;           /* (w) */
	uint64_t shape;           /* (w) structural changes, for the finger */
	struct vas_finger finger; /* (w) the writer's last path */
	struct vas *vas;          /* (i) */
};

/*
 * Per-context caching of small ranges (docs/design.md 3.3, "Writers that
 * do not serialize"): with caching on, a context serves allocations of up
 * to VAS_PC_QMAX quanta (at quantum alignment) from ranges it holds in the
 * address tree, and keeps up to VAS_PC_SLOTS small ranges it freed, each
 * change one leaf under the leaf's lock and the shared side of the
 * exclusion, not the writer lock.
 */
#define VAS_PC_QMAX 16  /* quanta: the largest cached allocation */
#define VAS_PC_RESV 256 /* quanta: a reservation (region / 16 at most) */
#define VAS_PC_SLOTS 32 /* cached free ranges a context keeps */

/* A held entry as its context records it (start and length in quanta). */
struct vas_held {
	uint64_t key, len;
};

/* A thread's or CPU's handle on a vas. */
struct vas_ctx {
	struct lf_epoch_record rec;       /* epoch participant */
	struct vas *vas;                  /* (i) */
	lf_atomic_u64 restarts;           /* (o) written by the owner only */
	lf_atomic_u64 rejected[VAS_NERR]; /* (o) */
	struct vas_ctx *next;             /* (i) list of contexts, for stats */
	/* (a) inside the shared side of the exclusion (vas_local_enter) */
	lf_atomic_u32 in_local LF_CACHE_ALIGNED;
	lf_atomic_u64 lcommits; /* (o) leaf-local writes committed */
	/* Statistics of leaf-local writes, added to the vas's (o): */
	lf_atomic_u64 d_ranges, d_free_ranges, d_free_q;
	/*
	 * (l) the exclusion: written by the owner inside its shared side, or
	 * by an exclusive writer (which waits until no shared side is held).
	 */
	struct vas_held resv; /* (l) the reservation; len 0: none */
	struct vas_held cache[VAS_PC_SLOTS]; /* (l) cached free ranges */
	uint32_t ncache;                     /* (l) */
};

struct vas {
	struct lf_spin wlock LF_CACHE_ALIGNED; /* (a) the writer lock */
	struct vas_tree addr;                  /* ranges by start (augmented) */
	struct vas_tree size;       /* free ranges by (length, start) */
	uint64_t base, nq;          /* (i) region, in bytes and in quanta */
	unsigned qshift;            /* (i) log2 of the quantum */
	unsigned sshift;            /* (i) bits of a start in a size key */
	uint64_t sexact;            /* (i) size keys below: exact lengths */
	uint64_t resv_q;            /* (i) a context's reservation, quanta */
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
	struct vas_node *held;      /* (w) nodes the write in progress locked */
	lf_atomic_u64 commits;      /* (a) writes committed (find's check) */
	lf_atomic_u32 excl;         /* (a) an exclusive writer is in */
	struct lf_epoch_domain epoch;
	struct lf_epoch_record own; /* create and destroy's participant */
	/*
	 * (a) per-context caching on (w to set). A line of its own: every
	 * vas_alloc and vas_free reads it before the writer lock, and the
	 * writers' lines (commits, excl, the counters) move between CPUs.
	 */
	lf_atomic_u32 caching LF_CACHE_ALIGNED;
};

/*
 * Create a vas over [base, base + size): both multiples of quantum (a
 * power of two), size / quantum below 2^47 (VAS_MAX_QBITS), base + size
 * not wrapping.
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

/*
 * Per-context caching of small ranges on or off (off at creation: exact
 * placement). On, vas_alloc of at most VAS_PC_QMAX quanta at quantum
 * alignment is served from the calling context's cached and reserved
 * ranges, writing one leaf without the writer lock; first fit and best fit
 * are then exact only outside those ranges (docs/design.md 3.3). Off, every
 * range held by a context goes back to the free ranges first (VAS_ENOMEM if
 * the node source fails: nothing changed). Any time, with anything.
 */
int vas_set_caching(struct vas *v, bool on);

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

/* ---- mmap-grade calls (each one atomic with respect to readers) ---- */

/* Placement flags of vas_map. */
#define VAS_MAP_TOPDOWN 1u /* the highest address that fits */
#define VAS_MAP_BESTFIT 2u /* the shortest free range that fits */
#define VAS_MAP_FLAGS (VAS_MAP_TOPDOWN | VAS_MAP_BESTFIT)

/*
 * Where vas_map may put a range: in [low, high) (both 0: the region),
 * aligned to align (a power of two; 0: the quantum). hint, if not 0, is
 * tried first: taken if [hint, hint + size) is aligned, in the window and
 * free; otherwise ignored (as mmap ignores a hint). Then first fit from
 * the bottom of the window (flags 0), from its top (VAS_MAP_TOPDOWN: the
 * block goes at the highest aligned address of the highest free range that
 * fits), or best fit (VAS_MAP_BESTFIT: the shortest free range that fits,
 * lowest on ties; with TOPDOWN the block goes at its top).
 */
struct vas_place {
	uint64_t size, align;
	uint64_t low, high;
	uint64_t hint;
	unsigned flags;
	uint32_t attr; /* VAS_ATTR_MASK bits */
	uintptr_t tag;
};

/* Map a new range where p says; its address in *addr. */
int vas_map(struct vas_ctx *c, const struct vas_place *p, uint64_t *addr);

/*
 * A callback for what a write removed or changed: each piece once, in
 * address order, with the range it was part of cut to [addr, addr + size)
 * (so a caller can free the frames behind it). It runs inside the write,
 * before any reader can see it (the vas is not changed yet), and must not
 * call into the same vas.
 */
typedef void (*vas_piece_fn)(const struct vas_range *piece, void *arg);

/*
 * Map [addr, addr + size) with attr and tag, removing whatever allocated
 * range overlaps it (MAP_FIXED): ranges that stick out keep the part
 * outside with their attributes. fn (may be NULL) gets each removed piece.
 */
int vas_replace(struct vas_ctx *c, uint64_t addr, uint64_t size, uint32_t attr,
		uintptr_t tag, vas_piece_fn fn, void *arg);

/*
 * Unmap [addr, addr + size), over any mix of ranges and holes (munmap):
 * fn gets each allocated piece removed; *removed (may be NULL) the bytes.
 */
int vas_unmap(struct vas_ctx *c, uint64_t addr, uint64_t size, vas_piece_fn fn,
	      void *arg, uint64_t *removed);

/* What vas_protect changes. */
#define VAS_PROT_TAG 1u /* set the tag too */

/*
 * Change the attributes of every range in [addr, addr + size), which must
 * be wholly allocated (VAS_ENOTALLOC, nothing changed, otherwise; as
 * mprotect refuses a hole): attr becomes (attr & ~mask) | bits, and with
 * VAS_PROT_TAG the tag becomes tag. Ranges are split at addr and at the
 * end; afterwards allocated neighbours with equal attributes and tag, in
 * [addr, addr + size) and across its two edges, are merged into one range
 * (as mprotect merges VMAs). fn gets each piece before its change.
 */
int vas_protect(struct vas_ctx *c, uint64_t addr, uint64_t size, uint32_t mask,
		uint32_t bits, uintptr_t tag, unsigned flags, vas_piece_fn fn,
		void *arg);

/*
 * The allocated range holding addr, or else the first one above it
 * (find_vma); VAS_ENOENT if none. One atomic snapshot: the range was the
 * answer at one moment during the call.
 */
int vas_find(struct vas_ctx *c, uint64_t addr, struct vas_range *out);

/* The first allocated range at or above the end of r (iteration). */
int vas_next(struct vas_ctx *c, const struct vas_range *r,
	     struct vas_range *out);

/* The allocated range with the greatest start below addr. */
int vas_prev(struct vas_ctx *c, uint64_t addr, struct vas_range *out);

/* The allocated range holding addr; writes no tree memory. */
int vas_lookup(struct vas_ctx *c, uint64_t addr, struct vas_range *out);

/*
 * n lookups in one call: rc[i] and out[i] are what vas_lookup(c, addr[i],
 * &out[i]) gives (out[i] written only where rc[i] is VAS_OK). The
 * lookups of up to 8 addresses at a time are overlapped, so that their
 * misses at the leaves are in flight together: where the leaves miss the
 * caches (a large tree) about half the cost per address of a vas_lookup
 * each; where the tree is cached, up to 1.3x it (docs/design.md 3.2,
 * "Lookups in batches"). Each answer is linearizable on its own; the n
 * answers are not one snapshot. Returns how many were found (rc[i] ==
 * VAS_OK), or VAS_ENOTREG, or VAS_EINVAL (a NULL array with n > 0, n
 * above INT32_MAX) with nothing written.
 */
int vas_lookup_n(struct vas_ctx *c, const uint64_t *addr, size_t n,
		 struct vas_range *out, int *rc);

/*
 * Call fn for every range (allocated and free) that overlaps [a, b), in
 * address order, until fn returns false. Each range reported was a range
 * of the vas at some moment during the call; the sequence is not one
 * atomic snapshot when writers run at the same time. With caching on, a
 * free stretch may come as several free ranges (ranges a context holds
 * beside ordinary free ones), each with tag 0 and no attributes.
 */
int vas_iterate(struct vas_ctx *c, uint64_t a, uint64_t b,
		bool (*fn)(const struct vas_range *r, void *arg), void *arg);

void vas_stats(struct vas *v, struct vas_stats *out);

/*
 * The structural check (docs/design.md, invariants A1-A11): 0, or the
 * number of the first invariant found broken. Takes the writer lock.
 */
int vas_check(struct vas *v, uint64_t *where);

const char *vas_strerror(int err);

#endif /* VAS_H */
