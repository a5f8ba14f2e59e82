/*
 * vas_i.h: the internals of vaspace/, shared by vas_tree.c (the B+-tree
 * and its node pool) and vas.c (the range allocator on top).
 */
#ifndef VAS_I_H
#define VAS_I_H

#include "lf_vlock.h"
#include "vas.h"

/*
 * A leaf entry's value and tag, side by side: 16 bytes, aligned so that
 * the pair never straddles a cache line, so a lookup that has found its
 * key reads one more line, not two.
 */
struct vas_lval {
	lf_atomic_u64 val;  /* (v) */
	lf_atomic_uptr tag; /* (v) */
} __attribute__((aligned(16)));

/*
 * A node: a leaf holds entries (key, val, tag); an inner node holds count
 * separator keys and count + 1 children, child i holding the keys in
 * [key[i-1], key[i]). Fields marked (v) are read optimistically by readers
 * with lf_olc_load_* and written under the node's version lock with
 * lf_olc_store_*; (w) fields are used by the writer alone (it holds the
 * vas's writer lock), never by readers. The layout is the reader's
 * (docs/design.md 3.2): the lock, count and level in the first line, the
 * keys apart (8 a line, searched), and a leaf's value and tag together in
 * one line per entry, the array starting on a line.
 */
struct vas_node {
	struct lf_vlock lock;         /* (a) version lock */
	lf_atomic_u32 count;          /* (v) entries, or separator keys */
	lf_atomic_u32 level;          /* (v) 0 for a leaf */
	struct lf_epoch_entry retire; /* (w) for the grace period */
	struct vas_node *next_free;   /* (w) freelist and reserve link */
	struct vas *vas;              /* (w) owner, for the retire callback */
	struct vas_node *held_next;   /* (w) list of the write's locked nodes */
	uint32_t held;                /* (w) VN_HELD, VN_DROPPED */
	uint64_t dropped_word;        /* (w) lock word when it left the tree */
	lf_atomic_u64 key[VAS_MAX_KEYS]; /* (v) sorted */
	union {
		struct vas_lval l[VAS_MAX_KEYS]; /* (v) */
		struct {
			lf_atomic_ptr child[VAS_MAX_KEYS + 1]; /* (v) */
			/*
			 * (w) written by the writer alone, without the
			 * node's lock, an atomic (relaxed): a node reused
			 * from leaf to inner puts it where stale readers
			 * may still load a value or a tag. Bits 0-55: the
			 * bound on the largest weight below the child (A4);
			 * bits 56-63: the child's count (A9), which readers
			 * load (relaxed, unvalidated) only to place the
			 * prefetch of a child's window, a leaf's or an inner
			 * node's, before its count is read (vt_rstep(),
			 * vt_rprefetch_child()): a stale copy costs a miss,
			 * never a wrong answer.
			 */
			lf_atomic_u64 maxw[VAS_MAX_KEYS + 1];
		} in;
	} u LF_CACHE_ALIGNED;
};

_Static_assert(sizeof(struct vas_node) <= VAS_NODE_SIZE,
	       "a node fits the node source's unit");
_Static_assert(VAS_MAX_KEYS < 256 && VAS_MAX_QBITS <= 56,
	       "a count and a weight share a maxw word");
_Static_assert(sizeof(struct vas_lval) == 16 &&
		       offsetof(struct vas_node, u) % LF_CACHELINE == 0,
	       "a leaf's value and tag share one cache line");

/*
 * Start bringing the line that holds p into the caches, for reading: a
 * hint, not a load (the compiler's builtin; no libc). It never faults,
 * whatever p is (a node a writer is changing, or one gone back to the
 * node source), and no answer depends on it: every line a reader uses it
 * loads itself and validates by the version. Used to overlap the misses
 * of one node's lines (docs/design.md 3.2).
 */
#define vas_prefetch(p) __builtin_prefetch((p), 0, 3)

/* Node flags of a write in progress (held). */
#define VN_HELD 1u    /* write-locked by the write, unlocked at commit */
#define VN_DROPPED 2u /* taken out of the tree: obsolete at commit */

/*
 * Leaf values of the address tree: length in quanta << 17 | attributes
 * << 1 | free (VAS_ATTR_BITS = 16 bits of attributes, lengths below 2^47).
 * The weight of an entry is its length if free, else 0; an inner node
 * keeps, beside each child, a bound on the largest weight below it
 * (maxw: never below it, A4), for first fit.
 */
#define VAS_VAL_LSHIFT (VAS_ATTR_BITS + 1)

/* A context's epoch record polls every this many retired nodes. */
#define VAS_EPOCH_POLL 64
_Static_assert(VAS_VAL_LSHIFT + VAS_MAX_QBITS == 64,
	       "length and attributes fill one value word");
static inline uint64_t vas_val_attr(uint64_t len, uint32_t attr, bool free)
{
	return len << VAS_VAL_LSHIFT | (uint64_t)(attr & VAS_ATTR_MASK) << 1 |
	       (free ? 1u : 0u);
}
static inline uint64_t vas_val(uint64_t len, bool free)
{
	return vas_val_attr(len, 0, free);
}
static inline uint64_t vas_val_len(uint64_t val)
{
	return val >> VAS_VAL_LSHIFT;
}
static inline uint32_t vas_val_attrs(uint64_t val)
{
	return (uint32_t)(val >> 1) & VAS_ATTR_MASK;
}
static inline bool vas_val_free(uint64_t val)
{
	return (val & 1) != 0;
}
/*
 * Held entries (docs/design.md 3.3): free to every reader, but held by a
 * context (the tag names it) and out of the free-range index: the free bit
 * and one of these marks in the attribute bits, which an ordinary free
 * range leaves 0 (A5). Their weight is 0, so no placement finds them.
 */
#define VAS_HELD_CACHED 1u /* a small range its context freed */
#define VAS_HELD_RESV 2u   /* a context's reservation */
static inline uint32_t vas_val_held(uint64_t val)
{
	return vas_val_free(val) ? vas_val_attrs(val) : 0;
}
/* An ordinary free range: in the size tree, coalesced (A6, A7). */
static inline bool vas_val_plain(uint64_t val)
{
	return vas_val_free(val) && vas_val_attrs(val) == 0;
}
static inline uint64_t vas_val_weight(uint64_t val)
{
	return vas_val_plain(val) ? vas_val_len(val) : 0;
}

/* An entry as the tree functions pass it around. */
struct vt_ent {
	uint64_t key;
	uint64_t val;
	uintptr_t tag;
};

/* Tree set-up and teardown (writer lock held or before sharing). */
int vt_init(struct vas_tree *t, struct vas *v, uint32_t cap, bool augment);
void vt_destroy(struct vas_tree *t);

/* Readers: optimistic, no shared writes; *restarts counts retries. */
bool vt_read_le(struct vas_tree *t, uint64_t key, struct vt_ent *e,
		uint64_t *restarts);
bool vt_read_ge(struct vas_tree *t, uint64_t key, struct vt_ent *e,
		uint64_t *restarts);
/* n <= VT_BATCH lookups as vt_read_le()'s, overlapped; found[i]: e[i]. */
#define VT_BATCH 8
void vt_read_le_n(struct vas_tree *t, const uint64_t *key, unsigned n,
		  struct vt_ent *e, bool *found, uint64_t *restarts);

/* Writer (vas writer lock held). */
bool vt_get_le(struct vas_tree *t, uint64_t key, struct vt_ent *e);
bool vt_get_ge(struct vas_tree *t, uint64_t key, struct vt_ent *e);
bool vt_get_lt(struct vas_tree *t, uint64_t key, struct vt_ent *e);
void vt_insert(struct vas_tree *t, const struct vt_ent *e);
void vt_delete(struct vas_tree *t, uint64_t key);
void vt_update(struct vas_tree *t, const struct vt_ent *e);
/* The first entry with key >= from whose weight is >= need (augmented). */
bool vt_first_weight(struct vas_tree *t, uint64_t from, uint64_t need,
		     struct vt_ent *e);
/* The last entry with key < below whose weight is >= need (augmented). */
bool vt_last_weight(struct vas_tree *t, uint64_t below, uint64_t need,
		    struct vt_ent *e);
/*
 * End the write in progress (two-phase locking): every node it locked is
 * unlocked only now, those it took out of the tree made obsolete and put on
 * the freelist, so readers see all of the write's changes or none (W1).
 */
void vt_commit(struct vas *v);
/*
 * Leaf-local writes (docs/design.md 3.3): only inside the shared side of
 * the exclusion, so no exclusive writer runs and no inner node changes;
 * the leaf is write-locked from vt_local_lock() to vt_local_unlock(), so
 * readers see the call whole by the leaf's version (W1 for one leaf).
 */
struct vt_local {
	struct vas_node *leaf, *up; /* the leaf and its parent (or NULL) */
	uint32_t slot;              /* the leaf's child slot in up */
	uint64_t lo, hi;            /* the leaf's fences */
	bool has_lo, has_hi;
};
void vt_local_lock(struct vas_tree *t, uint64_t key, struct vt_local *l);
void vt_local_unlock(struct vt_local *l);
/* The entry with exactly this key in the locked leaf, if there. */
bool vt_local_get(const struct vt_local *l, uint64_t key, struct vt_ent *e);
/* Rewrite the entry with e's key (there) with e's value and tag. */
void vt_local_set(struct vt_local *l, const struct vt_ent *e);
/* Insert e if its key lies in the fences and the leaf has room. */
bool vt_local_insert(struct vas_tree *t, struct vt_local *l,
		     const struct vt_ent *e);

/* Nodes one insert may need at most. */
uint32_t vt_insert_nodes(const struct vas_tree *t);
/* Structural check: 0 or an invariant number (A1-A4, A9); *where a key. */
int vt_check(struct vas_tree *t, uint64_t *nentries, uint64_t *where);

/* Node pool (vas_tree.c): reserve before a write, so it cannot fail. */
int vn_reserve(struct vas *v, uint32_t n);
void vn_retire_surplus(struct vas *v, struct lf_epoch_record *rec);

#endif /* VAS_I_H */
