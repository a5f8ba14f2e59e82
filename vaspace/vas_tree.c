/*
 * vas_tree.c: the B+-tree of vaspace/, with optimistic lock coupling for
 * readers (V. Leis, M. Haubenschild, T. Neumann, "Optimistic Lock
 * Coupling", IEEE Data Eng. Bull. 42(1), 2019; the shape of BTreeOLC), and
 * its node pool. The argument in full: docs/design.md 3.2-3.5.
 *
 * Readers go down from the root reading each node's version, the fields
 * they need (relaxed-or-stronger atomic loads: lf_olc_load_*), the child
 * pointer, then the child's version, then validate the parent: if any
 * version moved they restart. Every value read optimistically is suspect
 * until validated, counts included: a count is bound-checked before it
 * serves as an array bound. A reader never writes shared memory.
 *
 * Writers hold the vas's writer lock, so they see a stable tree; each node
 * they change is version-locked (lf_vlock_write_lock) at its first change
 * and stays locked until the commit of the whole call (vt_commit: W1,
 * two-phase locking), so a reader sees every call before or after, never
 * part of it, however many nodes and entries it changed.
 * Deletion merges a node that falls below a quarter full with a sibling
 * when both fit in one node, or else borrows from the sibling, so every
 * node but the root stays at least a quarter full (A2).
 *
 * Readers and the fences. A leaf's keys all lie within the fences its
 * parents' separators give it, but its first key can be above its lower
 * fence once its first entry was deleted. So a reader looking for the
 * greatest key <= k that finds none in its leaf goes down again for the
 * greatest key below the leaf's lower fence (and symmetrically for the
 * smallest key >= k). The answer then comes from another leaf, read and
 * validated on its own.
 *
 * Node pool. Nodes come from the vas's node source, one VAS_NODE_SIZE unit
 * each. A node taken out of the tree is unlocked obsolete
 * (lf_vlock_write_unlock_obsolete) and put on the freelist: its memory
 * stays a node, so a stale reader reads its lock, sees it obsolete or sees
 * a larger version (V1: versions only grow, across reuse too, by
 * lf_vlock_revive_locked) and restarts. Nodes beyond the high-water mark
 * are retired through the epoch domain and handed back to the source by
 * the callback, once no reader can hold a pointer to them (E3). Before a
 * write, the writer reserves every node it may need, so a failing source
 * fails the call before anything changed.
 */
#include "vas_i.h"

/* ---- node pool ---- */

/* A split, merge, borrow or root change: every finger is stale. */
static void vt_reshape(struct vas_tree *t)
{
	t->shape++;
}

static struct vas_node *vn_pop(struct vas_node **list, uint64_t *n)
{
	struct vas_node *x = *list;
	if (x != NULL) {
		*list = x->next_free;
		(*n)--;
	}
	return x;
}

static void vn_push(struct vas_node **list, uint64_t *n, struct vas_node *x)
{
	x->next_free = *list;
	*list = x;
	(*n)++;
}

int vn_reserve(struct vas *v, uint32_t want)
{
	while (v->nreserve < want) {
		struct vas_node *x = vn_pop(&v->freelist, &v->nfree);
		if (x == NULL) {
			x = v->src.get(v->src.arg);
			if (x == NULL)
				return VAS_ENOMEM;
			/* A fresh node is born obsolete, version 0 (V1). */
			lf_init_u64(&x->lock.word, LF_VLOCK_OBSOLETE);
			x->vas = v;
			x->held = 0;
			x->dropped_word = 0;
		}
		vn_push(&v->reserve, &v->nreserve, x);
	}
	return VAS_OK;
}

/* A reserved node, write-locked, empty, at this level. */
static struct vas_node *vn_take(struct vas_tree *t, uint32_t level)
{
	struct vas *v = t->vas;
	struct vas_node *x = vn_pop(&v->reserve, &v->nreserve);
	LF_ASSERT(x != NULL); /* vn_reserve() counted wrong */
	vt_reshape(t);
	int rc = lf_vlock_revive_locked(&x->lock);
	LF_ASSERT(rc == LF_VLOCK_OK);
	/* V1 across reuse: above every word it had in the tree before. */
	LF_DEBUG_ASSERT(lf_load_u64(&x->lock.word, LF_RELAXED) >
			x->dropped_word);
	lf_olc_store_u32(&x->count, 0);
	lf_olc_store_u32(&x->level, level);
	t->nodes++;
	return x;
}

/* x, write-locked by us, is out of the tree: obsolete, to the freelist. */
static void vn_drop(struct vas_tree *t, struct vas_node *x)
{
	struct vas *v = t->vas;
	int rc = lf_vlock_write_unlock_obsolete(&x->lock);
	LF_ASSERT(rc == LF_VLOCK_OK);
	vt_reshape(t);
	x->dropped_word = lf_load_u64(&x->lock.word, LF_RELAXED);
	vn_push(&v->freelist, &v->nfree, x);
	t->nodes--;
}

static void vn_retired(struct lf_epoch_entry *e)
{
	struct vas_node *x =
		(struct vas_node *)((char *)e -
				    offsetof(struct vas_node, retire));
	struct vas *v = x->vas;
	v->src.put(v->src.arg, x);
	/* Relaxed: statistics. */
	lf_fetch_add_u64(&v->retired, 1, LF_RELAXED);
	lf_fetch_sub_u64(&v->pending_put, 1, LF_RELAXED);
}

/* Nodes past the high-water mark go back to the source after a grace. */
void vn_retire_surplus(struct vas *v, struct lf_epoch_record *rec)
{
	while (v->nfree > v->high_water) {
		struct vas_node *x = vn_pop(&v->freelist, &v->nfree);
		/* Relaxed: statistics. */
		lf_fetch_add_u64(&v->pending_put, 1, LF_RELAXED);
		int rc = lf_epoch_retire(rec, &x->retire, vn_retired);
		LF_ASSERT(rc == LF_EPOCH_OK);
	}
}

/* ---- reading fields (writers: relaxed; nobody else writes them) ---- */

static uint32_t vn_count(const struct vas_node *n)
{
	return lf_load_u32(&n->count, LF_RELAXED);
}
static uint64_t vn_key(const struct vas_node *n, uint32_t i)
{
	return lf_load_u64(&n->key[i], LF_RELAXED);
}
static struct vas_node *vn_child(const struct vas_node *n, uint32_t i)
{
	return lf_load_ptr(&n->u.in.child[i], LF_RELAXED);
}
static bool vn_leaf(const struct vas_node *n)
{
	return lf_load_u32(&n->level, LF_RELAXED) == 0;
}
/*
 * maxw, the writer's: relaxed (see struct vas_node). Its word holds the
 * bound (the low VT_W_BITS) and the child's count above them (A9).
 */
#define VT_W_BITS 56
#define VT_W_MASK ((UINT64_C(1) << VT_W_BITS) - 1)
static uint64_t vn_w(const struct vas_node *n, uint32_t i)
{
	return lf_load_u64(&n->u.in.maxw[i], LF_RELAXED) & VT_W_MASK;
}
static void vn_setw(struct vas_node *n, uint32_t i, uint64_t w)
{
	LF_DEBUG_ASSERT(w <= VT_W_MASK); /* lengths are below 2^47 */
	uint64_t x = lf_load_u64(&n->u.in.maxw[i], LF_RELAXED);
	lf_store_u64(&n->u.in.maxw[i], (x & ~VT_W_MASK) | w, LF_RELAXED);
}
/* The count of child i of n as n keeps it (A9). */
static uint32_t vn_hint(const struct vas_node *n, uint32_t i)
{
	/* Relaxed: a hint (see struct vas_node); the writer's own, too. */
	return (uint32_t)(lf_load_u64(&n->u.in.maxw[i], LF_RELAXED) >>
			  VT_W_BITS);
}
/*
 * Child i of up is ch: copy its count (A9). up need not be locked:
 * readers only place prefetches by the copy.
 */
static void vn_sethint(struct vas_node *up, uint32_t i,
		       const struct vas_node *ch)
{
	/* Relaxed, all three: the writer's own words (struct vas_node); the
	 * copy pairs with nothing, a reader only prefetches by it. */
	uint64_t x = lf_load_u64(&up->u.in.maxw[i], LF_RELAXED);
	uint64_t h = (uint64_t)lf_load_u32(&ch->count, LF_RELAXED);
	lf_store_u64(&up->u.in.maxw[i], (x & VT_W_MASK) | h << VT_W_BITS,
		     LF_RELAXED);
}

static void vn_get(const struct vas_node *n, uint32_t i, struct vt_ent *e)
{
	e->key = vn_key(n, i);
	e->val = lf_load_u64(&n->u.l[i].val, LF_RELAXED);
	e->tag = lf_load_uptr(&n->u.l[i].tag, LF_RELAXED);
}
static void vn_put(struct vas_node *n, uint32_t i, const struct vt_ent *e)
{
	lf_olc_store_u64(&n->key[i], e->key);
	lf_olc_store_u64(&n->u.l[i].val, e->val);
	lf_olc_store_uptr(&n->u.l[i].tag, e->tag);
}
/* Copy slot j of s to slot i of d (same kind of node; d locked). */
static void vn_copy(struct vas_node *d, uint32_t i, const struct vas_node *s,
		    uint32_t j)
{
	if (vn_leaf(s)) {
		struct vt_ent e;
		vn_get(s, j, &e);
		vn_put(d, i, &e);
		return;
	}
	lf_olc_store_u64(&d->key[i], vn_key(s, j));
}
static void vn_copy_child(struct vas_node *d, uint32_t i,
			  const struct vas_node *s, uint32_t j)
{
	lf_olc_store_ptr(&d->u.in.child[i], vn_child(s, j));
	/* The bound and the count copy move with the child. Relaxed, both:
	 * the writer's own words (struct vas_node). */
	lf_store_u64(&d->u.in.maxw[i],
		     lf_load_u64(&s->u.in.maxw[j], LF_RELAXED), LF_RELAXED);
}

/* The largest weight in node n (its entries, or its children's). */
static uint64_t vn_max(const struct vas_node *n)
{
	uint64_t m = 0;
	uint32_t c = vn_count(n);
	if (vn_leaf(n)) {
		for (uint32_t i = 0; i < c; i++) {
			uint64_t w = vas_val_weight(
				lf_load_u64(&n->u.l[i].val, LF_RELAXED));
			m = w > m ? w : m;
		}
		return m;
	}
	for (uint32_t i = 0; i <= c; i++)
		m = vn_w(n, i) > m ? vn_w(n, i) : m;
	return m;
}

/*
 * Start bringing in a node's header and keys, all lines at once, before
 * anything of it is read (a prefetch of memory that a writer is changing,
 * or that went back to the node source, reads nothing and faults never).
 */
static void vt_prefetch(const struct vas_tree *t, const struct vas_node *n)
{
	const char *p = (const char *)n, *end = (const char *)&n->key[t->cap];
	for (; p < end; p += LF_CACHELINE)
		vas_prefetch(p);
}

/*
 * Keys <= key among k[0..c), sorted: a binary search with no branch on
 * the keys (a conditional move per probe), so no mispredictions. Every
 * index stays below c. Loads with order o: relaxed for the writer, acquire
 * for optimistic readers (as lf_olc_load_u64(), V4).
 */
static uint32_t vt_search(const lf_atomic_u64 *k, uint32_t c, uint64_t key,
			  lf_order o)
{
	if (c == 0)
		return 0;
	uint32_t base = 0, len = c;
	while (len > 1) {
		uint32_t half = len / 2;
		base = lf_load_u64(&k[base + half], o) <= key ? base + half
							      : base;
		len -= half;
	}
	return base + (lf_load_u64(&k[base], o) <= key ? 1u : 0u);
}

/* Keys of n that are <= key (inner: the child to take). */
static uint32_t vn_upper(const struct vas_node *n, uint64_t key)
{
	return vt_search(n->key, vn_count(n), key, LF_RELAXED);
}
/* Keys of n that are < key. */
static uint32_t vn_lower(const struct vas_node *n, uint64_t key)
{
	return key == 0 ? 0 : vn_upper(n, key - 1);
}

/*
 * Keys of leaf n that are < key, trying first around hint (the position
 * of the writer's last descent in this leaf: a write's descents mostly
 * come back to the same entry or its neighbour), then a binary search.
 * Exact either way: a candidate h is the answer iff key[h - 1] < key <=
 * key[h] (with the ends open).
 */
static uint32_t vn_lower_near(const struct vas_node *n, uint64_t key,
			      uint32_t hint)
{
	uint32_t c = vn_count(n);
	for (uint32_t k = 0; k < 3; k++) {
		uint32_t h = k == 0 ? hint : k == 1 ? hint + 1 : hint - 1;
		if (h > c || (k == 2 && hint == 0))
			continue;
		if ((h == 0 || vn_key(n, h - 1) < key) &&
		    (h == c || vn_key(n, h) >= key))
			return h;
	}
	return vn_lower(n, key);
}

/* ---- the writer's path ---- */

struct vt_path {
	struct vas_node *n[VAS_MAX_HEIGHT];
	uint32_t i[VAS_MAX_HEIGHT]; /* child taken; at the leaf, a position */
	uint32_t depth;             /* index of the leaf */
};

static struct vas_node *vt_root(const struct vas_tree *t)
{
	return lf_load_ptr(&t->root, LF_RELAXED);
}

/* Down to the leaf for key from the root; at the leaf, i = keys < key. */
static void vt_descend_full(struct vas_tree *t, uint64_t key, struct vt_path *p,
			    struct vas_finger *f)
{
	struct vas_node *n = vt_root(t);
	f->has_lo = f->has_hi = false;
	for (uint32_t d = 0;; d++) {
		LF_ASSERT(d < VAS_MAX_HEIGHT);
		p->n[d] = n;
		if (vn_leaf(n)) {
			p->i[d] = vn_lower(n, key);
			p->depth = d;
			return;
		}
		uint32_t i = vn_upper(n, key);
		p->i[d] = i;
		if (i > 0) {
			f->lo = vn_key(n, i - 1);
			f->has_lo = true;
		}
		if (i < vn_count(n)) {
			f->hi = vn_key(n, i);
			f->has_hi = true;
		}
		n = vn_child(n, i);
		vt_prefetch(t, n);
	}
}

/*
 * Down to the leaf for key; at the leaf, i = keys < key. A key inside the
 * fences of the last path (the finger) takes the same inner nodes and
 * children, as long as no structural change moved a separator or a child
 * since (t->shape): only the leaf is searched. Inner nodes change only by
 * splits, merges, borrows and root changes, each of which moves the shape.
 */
static void vt_descend(struct vas_tree *t, uint64_t key, struct vt_path *p)
{
	struct vas_finger *f = &t->finger;
	if (f->shape != t->shape || (f->has_lo && key < f->lo) ||
	    (f->has_hi && key >= f->hi)) {
		vt_descend_full(t, key, p, f);
		for (uint32_t d = 0; d <= p->depth; d++) {
			f->n[d] = p->n[d];
			f->i[d] = p->i[d];
		}
		f->depth = p->depth;
		f->shape = t->shape;
		return;
	}
	for (uint32_t d = 0; d < f->depth; d++) {
		p->n[d] = f->n[d];
		p->i[d] = f->i[d];
	}
	p->depth = f->depth;
	p->n[f->depth] = f->n[f->depth];
	p->i[f->depth] = vn_lower_near(f->n[f->depth], key, f->i[f->depth]);
	f->i[f->depth] = p->i[f->depth];
#ifdef LF_DEBUG
	/* The finger's path is the one a descent from the root takes. */
	struct vt_path q;
	struct vas_finger g;
	vt_descend_full(t, key, &q, &g);
	LF_DEBUG_ASSERT(q.depth == p->depth);
	for (uint32_t d = 0; d <= q.depth; d++)
		LF_DEBUG_ASSERT(q.n[d] == p->n[d] && q.i[d] == p->i[d]);
#endif
}

/* A weight that says "anything in the node may have changed". */
#define VT_W_UNKNOWN UINT64_MAX

/* The weight of leaf entry i of n (writer). */
static uint64_t vn_weight(const struct vas_node *n, uint32_t i)
{
	return vas_val_weight(lf_load_u64(&n->u.l[i].val, LF_RELAXED));
}

/*
 * Refresh maxw on the path above level d after one weight of node p->n[d]
 * went from w_old to w_new (w_old VT_W_UNKNOWN: after a merge or a borrow,
 * anything). maxw is an upper bound of the largest weight below (A4), so
 * a weight that grows raises the slots above it, and one that shrinks
 * changes nothing: no node is scanned to find the new largest (a free
 * range taken by best fit is often its leaf's largest, and the scan was
 * most of a write's cost). The first-fit searches lower a bound that led
 * them into a subtree without a fit (vt_fw_node). After a merge or a
 * borrow the slot is recomputed from the node. Stops at the first level
 * whose slot does not change.
 */
static void vt_fix_up(struct vas_tree *t, struct vt_path *p, uint32_t d,
		      uint64_t w_old, uint64_t w_new)
{
	if (!t->augment)
		return;
	while (d-- > 0) {
		struct vas_node *up = p->n[d];
		uint64_t r = vn_w(up, p->i[d]), m;
		if (w_old == VT_W_UNKNOWN)
			m = vn_max(p->n[d + 1]);
		else
			m = w_new > r ? w_new : r;
		if (m == r)
			return;
		vn_setw(up, p->i[d], m);
		w_old = r;
		w_new = m;
	}
}

/* ---- set-up ---- */

int vt_init(struct vas_tree *t, struct vas *v, uint32_t cap, bool augment)
{
	t->vas = v;
	t->cap = cap;
	t->augment = augment;
	t->height = 1;
	t->nodes = 0;
	t->shape = 1; /* the finger (shape 0) is empty */
	t->finger.shape = 0;
	lf_vlock_init(&t->rootlock);
	int rc = vn_reserve(v, 1);
	if (rc != VAS_OK)
		return rc;
	struct vas_node *r = vn_take(t, 0);
	lf_vlock_write_unlock(&r->lock);
	lf_init_ptr(&t->root, r);
	return VAS_OK;
}

static void vt_destroy_node(struct vas_tree *t, struct vas_node *n)
{
	if (!vn_leaf(n))
		for (uint32_t i = 0; i <= vn_count(n); i++)
			vt_destroy_node(t, vn_child(n, i));
	lf_vlock_write_lock(&n->lock);
	vn_drop(t, n);
}

void vt_destroy(struct vas_tree *t)
{
	vt_destroy_node(t, vt_root(t));
	lf_init_ptr(&t->root, NULL);
}

uint32_t vt_insert_nodes(const struct vas_tree *t)
{
	return t->height + 1; /* a split per level, and a new root */
}

/* ---- readers ---- */

/*
 * The steps of a lookup are inlined into the two readers, so that a
 * lookup's state (node, version, fences, window) lives in registers: a
 * lookup of few instructions lets the processor start the next one while
 * this one waits for its leaf (docs/design.md 3.2). vt_rprefetch() must
 * be inlined for another reason: to gcc a prefetch has no side effect, so
 * a function made of prefetches alone is pure and gcc drops every call to
 * it (it did, silently, before the attribute).
 */
#define VT_RFAST inline __attribute__((always_inline))

struct vt_leaf {
	struct vas_node *n;
	uint64_t v;      /* its version */
	uint64_t lo, hi; /* fences: keys in [lo, hi) */
	bool has_lo, has_hi;
	/*
	 * The window of n that the step into it prefetched (counts [pa, pb]
	 * placed for pc keys, from the count its parent keeps: A9); pc 0:
	 * none. The search takes it only if n's own count is pc.
	 */
	uint32_t pc, pa, pb;
};

/* Optimistic read of count, bound-checked: > cap means "changed". */
static VT_RFAST uint32_t vt_rcount(const struct vas_tree *t,
				   const struct vas_node *n)
{
	uint32_t c = lf_olc_load_u32(&n->count);
	return c > t->cap ? UINT32_MAX : c;
}

/*
 * The reader's search in one node: how many of its first c keys are <=
 * key. c is bounded by the capacity (vt_rcount()), and every index read
 * stays below c (or at c for a child or a leaf entry), so keys torn by a
 * writer cannot lead a read outside the node; what the search finds is
 * validated by the node's version afterwards, like any optimistic read.
 *
 * A lookup at 10^6 ranges misses the caches at each leaf (docs/design.md
 * 3.2), so the search is built to need few dependent lines, and few
 * instructions: a lookup short enough lets the processor run the next
 * one's descent (and start its leaf's misses) while this one's leaf is
 * still coming. Keys are addresses, spread evenly enough through a node
 * that its fences [lo, hi) and its count place key to within a few slots
 * (interpolation): the window of 2 VT_WIN keys around that position, the
 * key on either side of it, and the entries (a leaf's value and tag, an
 * inner node's children) the answer can take are prefetched at once, as
 * soon as the node's address is known (vt_rprefetch_child()), so their
 * misses overlap, and the window is counted with independent loads. If
 * the keys at its ends do not bracket key (skewed keys, or a torn read),
 * the window of VT_SPAN keys beside it on that side is tried the same
 * way (a tree aged by writes spreads its keys less evenly: the placed
 * window missed in 3% of leaf searches of the fresh 10^6 tree and 16%
 * after three rounds of mix50, docs/design.md 3.2); only if that one does
 * not bracket key either, a binary search over all c keys follows, their
 * lines prefetched at once.
 */
#define VT_WIN 4
#define VT_SPAN (2 * VT_WIN)   /* keys in a window */
#define VT_SMALL (VT_SPAN + 2) /* nodes this small are counted whole */

/* Prefetch the lines from a to b (inclusive), all at once. */
static void vt_prefetch_span(const void *a, const void *b)
{
	uintptr_t p = (uintptr_t)a & ~(uintptr_t)(LF_CACHELINE - 1);
	for (; p <= (uintptr_t)b; p += LF_CACHELINE)
		vas_prefetch((const void *)p);
}

/*
 * How many of c keys spread evenly over [lo, hi) are <= key (lo <= key <
 * hi, c < 2^8): its share of the span times c, plus the key at lo; at
 * most c. The span is shifted below 2^24, so that the product fits 32
 * bits and one 32-bit division does: it lies on the way from a child's
 * address to the prefetch of its window.
 */
static VT_RFAST uint32_t vt_guess(uint64_t lo, uint64_t hi, uint64_t key,
				  uint32_t c)
{
	uint64_t span = hi - lo, off = key - lo;
	unsigned s = 64 - (unsigned)__builtin_clzll(span); /* span >= 1 */
	s = s > 24 ? s - 24 : 0;
	uint32_t g = (uint32_t)(off >> s) * c / (uint32_t)(span >> s) + 1;
	return g < c ? g : c;
}

/* Keys <= key among k[a..b), counted with independent loads. */
static inline uint32_t vt_rcount_le(const lf_atomic_u64 *k, uint32_t a,
				    uint32_t b, uint64_t key)
{
	uint32_t n = a;
	for (uint32_t j = a; j < b; j++)
		n += lf_olc_load_u64(&k[j]) <= key ? 1u : 0u;
	return n;
}

/*
 * Keys <= key among the window k[a..a + VT_SPAN), counted with
 * independent loads in straight-line code (a loop costs as many
 * instructions again, and they delay the next lookup).
 */
#define VT_LE(j) (lf_olc_load_u64(&w[j]) <= key ? 1u : 0u)
static inline uint32_t vt_rcount_win(const lf_atomic_u64 *k, uint32_t a,
				     uint64_t key)
{
	const lf_atomic_u64 *w = &k[a];
	return a + VT_LE(0) + VT_LE(1) + VT_LE(2) + VT_LE(3) + VT_LE(4) +
	       VT_LE(5) + VT_LE(6) + VT_LE(7);
}
#undef VT_LE
_Static_assert(VT_SPAN == 8, "vt_rcount_win() counts 8 keys");

/*
 * The window [*a, *b) of VT_SPAN counts (the keys a to b - 1) around the
 * interpolated count of key among c > VT_SMALL keys lying in [lo, hi)
 * (lo <= key < hi), kept inside the node: a fixed size, so that its count
 * and its prefetch are straight-line code.
 */
static VT_RFAST void vt_rplace(uint64_t lo, uint64_t hi, uint32_t c,
			       uint64_t key, uint32_t *a, uint32_t *b)
{
	uint32_t g = vt_guess(lo, hi, key, c);
	g = g > VT_WIN ? g - VT_WIN : 0;
	*a = g < c - VT_SPAN ? g : c - VT_SPAN;
	*b = *a + VT_SPAN;
}

/*
 * Prefetch, all at once, what the window [a, b) of n may read: the keys
 * a - 1 to b (the window and the two that bracket it), and what the
 * answer may take (a leaf's value-tag pairs a - 1 to b - 1; an inner
 * node's children a to b and their maxw words, which carry the copy of
 * each child's count). Each run starts at slot s = a - 1 (0 if a is 0,
 * which the run then covers) and is VT_SPAN + 2 slots long, so its lines
 * are those of its first and last bytes and every 64 bytes between: fixed
 * code, no loop. The runs stay inside the node: the keys' ends at slot
 * s + VT_SPAN + 1 = b <= c (at most one past the array, the first bytes
 * of u), the pairs' one slot before, the children's and maxw words' at b,
 * within their VAS_MAX_KEYS + 1.
 */
#define VT_RUN(base, run)                                                      \
	do {                                                                   \
		const char *p_ = (const char *)(base);                         \
		for (size_t o_ = 0; o_ < (run); o_ += LF_CACHELINE)            \
			vas_prefetch(p_ + o_);                                 \
		vas_prefetch(p_ + (run)-1);                                    \
	} while (0)
static VT_RFAST void vt_rprefetch(const struct vas_node *n, uint32_t a,
				  bool leaf)
{
	uint32_t s = a > 0 ? a - 1 : 0;
	VT_RUN(&n->key[s], (VT_SPAN + 2) * sizeof(n->key[0]));
	if (leaf) {
		VT_RUN(&n->u.l[s], (VT_SPAN + 1) * sizeof(n->u.l[0]));
		return;
	}
	VT_RUN(&n->u.in.child[s], (VT_SPAN + 2) * sizeof(n->u.in.child[0]));
	VT_RUN(&n->u.in.maxw[s], (VT_SPAN + 2) * sizeof(n->u.in.maxw[0]));
}
#undef VT_RUN

/* Whether l's fences hold key, so that a window can be placed. */
static VT_RFAST bool vt_rfenced(const struct vt_leaf *l, uint64_t key)
{
	return l->has_hi && key < l->hi && (!l->has_lo || l->lo <= key);
}

/*
 * vt_rsearch_win()'s answer when the window missed: the count is to be
 * taken from the side window [*sa, *sb) by vt_rside(), its lines
 * prefetched meanwhile. Counts are at most the capacity, never this.
 */
#define VT_SIDE UINT32_MAX

/*
 * Keys <= key among the first c of l->n (a leaf if leaf), optimistically,
 * or VT_SIDE. The window is the one the step into l->n placed and
 * prefetched if it was placed for c keys (the common case: nothing to
 * place or prefetch here); else it is placed now, in the fences, or in a
 * node without an upper fence (the root, the right spine) below its own
 * last key. If the keys on either side of the window do not bracket key,
 * the window of VT_SPAN keys beside it on that side is named in [*sa,
 * *sb) and its lines (keys, and a leaf's value-tag pairs the answer may
 * take) prefetched: the caller counts it with vt_rside(), at once (one
 * lookup, vt_rsearch()) or after the other lookups of a batch have
 * issued theirs (vt_read_le_n()).
 */
static VT_RFAST uint32_t vt_rsearch_win(const struct vt_leaf *l, uint32_t c,
					uint64_t key, bool leaf, uint32_t *sa,
					uint32_t *sb)
{
	const struct vas_node *n = l->n;
	uint32_t a, b;
	if (c <= VT_SMALL)
		return vt_rcount_le(n->key, 0, c, key);
	if (l->pc == c) {
		a = l->pa;
		b = l->pb;
	} else {
		uint64_t lo = l->has_lo ? l->lo : 0, hi = l->hi;
		if (!l->has_hi && key >= (hi = lf_olc_load_u64(&n->key[c - 1])))
			return c;
		if (key < lo || key >= hi)
			goto whole;
		vt_rplace(lo, hi, c, key, &a, &b);
		vt_rprefetch(n, a, leaf);
	}
	if (a > 0 && lf_olc_load_u64(&n->key[a - 1]) > key) {
		*sa = a > VT_SPAN ? a - VT_SPAN : 0; /* left of the window */
		*sb = a;
	} else if (b < c && lf_olc_load_u64(&n->key[b]) <= key) {
		*sa = b; /* right of it */
		*sb = c - b > VT_SPAN ? b + VT_SPAN : c;
	} else {
		return vt_rcount_win(n->key, a, key);
	}
	/* The side window, the keys that bracket it, the entries its
	 * answer may take (sa - 1 to sb - 1): all inside the node. */
	vt_prefetch_span(&n->key[*sa > 0 ? *sa - 1 : 0],
			 &n->key[*sb < c ? *sb : c - 1]);
	if (leaf)
		vt_prefetch_span(&n->u.l[*sa > 0 ? *sa - 1 : 0],
				 &n->u.l[*sb - 1]);
	return VT_SIDE;
whole:
	vt_prefetch_span(n->key, &n->key[c - 1]);
	return vt_search(n->key, c, key, LF_ACQUIRE);
}

/*
 * Keys <= key among the first c of n, from the side window [sa, sb) that
 * vt_rsearch_win() named, if the keys on either side of it bracket key
 * (sa < sb <= c); else by a binary search over all c keys.
 */
static VT_RFAST uint32_t vt_rside(const struct vas_node *n, uint32_t c,
				  uint64_t key, uint32_t sa, uint32_t sb)
{
	if ((sa == 0 || lf_olc_load_u64(&n->key[sa - 1]) <= key) &&
	    (sb == c || lf_olc_load_u64(&n->key[sb]) > key))
		return vt_rcount_le(n->key, sa, sb, key);
	vt_prefetch_span(n->key, &n->key[c - 1]);
	return vt_search(n->key, c, key, LF_ACQUIRE);
}

/* Keys <= key among the first c of l->n (a leaf if leaf), optimistically. */
static VT_RFAST uint32_t vt_rsearch(const struct vt_leaf *l, uint32_t c,
				    uint64_t key, bool leaf)
{
	uint32_t sa = 0, sb = 0, i = vt_rsearch_win(l, c, key, leaf, &sa, &sb);
	return i != VT_SIDE ? i : vt_rside(l->n, c, key, sa, sb);
}

/* Start at the root: its version, validated against the root pointer. */
static VT_RFAST bool vt_rroot(struct vas_tree *t, struct vas_node **np,
			      uint64_t *vp)
{
	uint64_t rv;
	if (!lf_vlock_read_lock(&t->rootlock, &rv))
		return false;
	struct vas_node *n = lf_olc_load_ptr(&t->root);
	if (n == NULL || !lf_vlock_read_lock(&n->lock, vp))
		return false;
	*np = n;
	return lf_vlock_validate(&t->rootlock, rv);
}

/*
 * Prefetch what the search of child ch (at level - 1) will read, as soon
 * as its address is known: its first line and its window, placed with the
 * count its parent keeps for it (hint, A9), so that a leaf's first line
 * and its window come in one memory access, not two (docs/design.md 3.2);
 * the placement goes to l (pc, pa, pb) for the search to take. l holds
 * ch's fences. A stale hint only misplaces the prefetch: the search places
 * the window again from the child's own count. A small child: all of it
 * that the search reads. Without fences or a usable hint: the header and
 * every key.
 */
static VT_RFAST void vt_rprefetch_child(const struct vas_tree *t,
					struct vt_leaf *l,
					const struct vas_node *ch,
					uint32_t level, uint32_t hint,
					uint64_t key)
{
	l->pc = 0;
	if (hint > VT_SMALL && hint <= t->cap && vt_rfenced(l, key)) {
		vas_prefetch(ch);
		vt_rplace(l->has_lo ? l->lo : 0, l->hi, hint, key, &l->pa,
			  &l->pb);
		vt_rprefetch(ch, l->pa, level == 1);
		l->pc = hint;
	} else if (hint > 0 && hint <= VT_SMALL) {
		vas_prefetch(ch);
		vt_rprefetch(ch, 0, level == 1);
	} else {
		vt_prefetch(t, ch);
	}
}

/*
 * The first half of a step down from inner node l->n (at level) for key:
 * the child's slot searched, its fences taken into l, its pointer read and
 * n validated, what its search will read prefetched; false: restart. l->n
 * and l->v stay n's until vt_rcouple().
 */
static VT_RFAST bool vt_rdown(struct vas_tree *t, struct vt_leaf *l,
			      uint32_t level, uint64_t key,
			      struct vas_node **chp)
{
	struct vas_node *n = l->n;
	uint32_t c = vt_rcount(t, n);
	if (c == UINT32_MAX)
		return false;
	uint32_t i = vt_rsearch(l, c, key, false);
	if (i > 0) {
		l->lo = lf_olc_load_u64(&n->key[i - 1]);
		l->has_lo = true;
	}
	if (i < c) {
		l->hi = lf_olc_load_u64(&n->key[i]);
		l->has_hi = true;
	}
	struct vas_node *ch = lf_olc_load_ptr(&n->u.in.child[i]);
	uint32_t hint = vn_hint(n, i);
	/* The pointer is a real child only if n did not change. */
	if (!lf_vlock_validate(&n->lock, l->v) || ch == NULL)
		return false;
	vt_rprefetch_child(t, l, ch, level, hint, key);
	*chp = ch;
	return true;
}

/*
 * The second half: ch's version read, then n (still l->n) validated, so
 * that n held ch when ch's version was read (lock coupling), however long
 * after vt_rdown() this runs; then l is ch's. false: restart.
 */
static VT_RFAST bool vt_rcouple(struct vt_leaf *l, struct vas_node *ch)
{
	uint64_t cv;
	if (!lf_vlock_read_lock(&ch->lock, &cv))
		return false;
	if (!lf_vlock_validate(&l->n->lock, l->v))
		return false;
	l->n = ch;
	l->v = cv;
	return true;
}

/* One step down from inner node l->n (at level) for key; false: restart. */
static VT_RFAST bool vt_rstep(struct vas_tree *t, struct vt_leaf *l,
			      uint32_t level, uint64_t key)
{
	struct vas_node *ch;
	return vt_rdown(t, l, level, key, &ch) && vt_rcouple(l, ch);
}

/* Down to the leaf for key, optimistically; false: restart. */
static VT_RFAST bool vt_rleaf(struct vas_tree *t, uint64_t key,
			      struct vt_leaf *l)
{
	*l = (struct vt_leaf){ .has_lo = false, .has_hi = false, .pc = 0 };
	if (!vt_rroot(t, &l->n, &l->v))
		return false;
	for (unsigned d = 0; d < VAS_MAX_HEIGHT; d++) {
		uint32_t level = lf_olc_load_u32(&l->n->level);
		if (level == 0)
			return true;
		if (!vt_rstep(t, l, level, key))
			return false;
	}
	return false;
}

/* Entry i of leaf l, if l is still at its version. */
static VT_RFAST bool vt_rent(const struct vt_leaf *l, uint32_t i,
			     struct vt_ent *e)
{
	e->key = lf_olc_load_u64(&l->n->key[i]);
	e->val = lf_olc_load_u64(&l->n->u.l[i].val);
	e->tag = lf_olc_load_uptr(&l->n->u.l[i].tag);
	return lf_vlock_validate(&l->n->lock, l->v);
}

/*
 * The answer from the next leaf over, when leaf f had none: f must still
 * be unchanged once the neighbour is read (else a writer may have moved
 * the answer into f meanwhile), and the neighbour must reach f's fence
 * (else a leaf lies between them).
 */
static bool vt_rneighbour(const struct vt_leaf *f, const struct vt_leaf *l,
			  bool left)
{
	if (!lf_vlock_validate(&f->n->lock, f->v))
		return false;
	if (left)
		return l->has_hi && l->hi >= f->lo;
	return l->has_lo && l->lo <= f->hi;
}

bool vt_read_le(struct vas_tree *t, uint64_t key, struct vt_ent *e,
		uint64_t *restarts)
{
	for (;; (*restarts)++) {
		struct vt_leaf f, l;
		uint32_t c, i;
		if (!vt_rleaf(t, key, &f) ||
		    (c = vt_rcount(t, f.n)) == UINT32_MAX)
			continue;
		i = vt_rsearch(&f, c, key, true);
		if (i > 0) {
			if (vt_rent(&f, i - 1, e))
				return true;
			continue;
		}
		if (!lf_vlock_validate(&f.n->lock, f.v))
			continue;
		if (!f.has_lo)
			return false; /* the leftmost leaf: nothing <= key */
		/* The greatest key below f's lower fence, in the leaf left. */
		if (!vt_rleaf(t, f.lo - 1, &l) ||
		    (c = vt_rcount(t, l.n)) == UINT32_MAX)
			continue;
		i = vt_rsearch(&l, c, f.lo - 1, true);
		if (i > 0 && vt_rent(&l, i - 1, e) &&
		    vt_rneighbour(&f, &l, true))
			return true;
	}
}

/*
 * A batched lookup's answer from its leaf l, where i keys are <= key
 * (vt_rsearch()): the entry before them, validated; or, none there and l
 * unchanged, what vt_read_le() finds to the left (as its own first pass
 * would). false: l changed, the caller starts over.
 */
static VT_RFAST bool vt_rfinish(struct vas_tree *t, const struct vt_leaf *l,
				uint32_t i, uint64_t key, struct vt_ent *e,
				bool *found, uint64_t *restarts)
{
	if (i > 0 && vt_rent(l, i - 1, e)) {
		*found = true;
		return true;
	}
	if (i == 0 && lf_vlock_validate(&l->n->lock, l->v)) {
		*found = vt_read_le(t, key, e, restarts);
		return true;
	}
	return false;
}

/*
 * n <= VT_BATCH lookups as vt_read_le() makes them, overlapped (docs/
 * design.md 3.2, "Lookups in batches"): first every key's descent, each
 * stopping at the leaf's parent with the leaf's pointer read, the parent
 * validated and the leaf's first line and window prefetched (vt_rdown()),
 * so that the n leaves' misses are in flight together; then, key by key,
 * the leaf coupled to its parent (vt_rcouple(): the parent unchanged since
 * its read, so it still held the leaf when the leaf's version was read),
 * searched and its entry validated, exactly the reads and validations of
 * vt_read_le()'s first pass; a key whose placed window missed is left,
 * its side window's lines asked for (vt_rsearch_win()), to a third pass
 * that counts the side windows (vt_rside()) once all of theirs are in
 * flight. Whatever the passes would not answer from the leaf (a restart,
 * or no key <= key there) is answered by vt_read_le() itself. Each answer
 * is linearizable on its own, at its leaf's validation; the n answers are
 * not one snapshot.
 */
void vt_read_le_n(struct vas_tree *t, const uint64_t *key, unsigned n,
		  struct vt_ent *e, bool *found, uint64_t *restarts)
{
	struct vt_leaf f[VT_BATCH];
	struct vas_node *leaf[VT_BATCH]; /* to couple; NULL: f[b] is it */
	bool ok[VT_BATCH];
	LF_ASSERT(n <= VT_BATCH);
	for (unsigned b = 0; b < n; b++) {
		struct vt_leaf *l = &f[b];
		*l = (struct vt_leaf){ .has_lo = false, .has_hi = false };
		leaf[b] = NULL;
		ok[b] = vt_rroot(t, &l->n, &l->v);
		for (unsigned d = 0; ok[b] && d < VAS_MAX_HEIGHT; d++) {
			uint32_t level = lf_olc_load_u32(&l->n->level);
			if (level == 0)
				break;
			if (level == 1) {
				ok[b] = vt_rdown(t, l, level, key[b], &leaf[b]);
				break;
			}
			ok[b] = vt_rstep(t, l, level, key[b]);
		}
	}
	/* Keys whose window missed: their side windows, counted in a third
	 * pass, once every key's side lines have been asked for. */
	unsigned side[VT_BATCH], ns = 0;
	uint32_t cs[VT_BATCH], sa[VT_BATCH], sb[VT_BATCH];
	for (unsigned b = 0; b < n; b++) {
		struct vt_leaf *l = &f[b];
		uint32_t c, i;
		if (ok[b] && (leaf[b] == NULL || vt_rcouple(l, leaf[b])) &&
		    lf_olc_load_u32(&l->n->level) == 0 &&
		    (c = vt_rcount(t, l->n)) != UINT32_MAX) {
			i = vt_rsearch_win(l, c, key[b], true, &sa[b], &sb[b]);
			if (i == VT_SIDE) {
				cs[b] = c;
				side[ns++] = b;
				continue;
			}
			if (vt_rfinish(t, l, i, key[b], &e[b], &found[b],
				       restarts))
				continue;
		}
		(*restarts)++;
		found[b] = vt_read_le(t, key[b], &e[b], restarts);
	}
	for (unsigned s = 0; s < ns; s++) {
		unsigned b = side[s];
		uint32_t i = vt_rside(f[b].n, cs[b], key[b], sa[b], sb[b]);
		if (vt_rfinish(t, &f[b], i, key[b], &e[b], &found[b], restarts))
			continue;
		(*restarts)++;
		found[b] = vt_read_le(t, key[b], &e[b], restarts);
	}
}

bool vt_read_ge(struct vas_tree *t, uint64_t key, struct vt_ent *e,
		uint64_t *restarts)
{
	for (;; (*restarts)++) {
		struct vt_leaf f, l;
		uint32_t c, i;
		if (!vt_rleaf(t, key, &f) ||
		    (c = vt_rcount(t, f.n)) == UINT32_MAX)
			continue;
		i = key == 0 ? 0 : vt_rsearch(&f, c, key - 1, true);
		if (i < c) {
			if (vt_rent(&f, i, e))
				return true;
			continue;
		}
		if (!lf_vlock_validate(&f.n->lock, f.v))
			continue;
		if (!f.has_hi)
			return false; /* the rightmost leaf: nothing >= key */
		/* The smallest key at or above f's upper fence. */
		if (!vt_rleaf(t, f.hi, &l) ||
		    (c = vt_rcount(t, l.n)) == UINT32_MAX)
			continue;
		i = vt_rsearch(&l, c, f.hi - 1, true);
		if (i < c && vt_rent(&l, i, e) && vt_rneighbour(&f, &l, false))
			return true;
	}
}

/* ---- writer lookups ---- */

/* The leftmost or rightmost leaf entry below n (n not empty). */
static void vt_edge(struct vas_node *n, bool right, struct vt_ent *e)
{
	while (!vn_leaf(n))
		n = vn_child(n, right ? vn_count(n) : 0);
	LF_ASSERT(vn_count(n) > 0);
	vn_get(n, right ? vn_count(n) - 1 : 0, e);
}

/* The greatest key < key, or <= key if eq; false if none. */
static bool vt_get_below(struct vas_tree *t, uint64_t key, bool eq,
			 struct vt_ent *e)
{
	struct vt_path p;
	vt_descend(t, key, &p);
	struct vas_node *l = p.n[p.depth];
	uint32_t i = p.i[p.depth]; /* keys < key; with eq, key too */
	if (eq && i < vn_count(l) && vn_key(l, i) == key)
		i++;
	if (i > 0) {
		vn_get(l, i - 1, e);
		return true;
	}
	/* The nearest left subtree on the path, its rightmost entry. */
	for (uint32_t d = p.depth; d-- > 0;)
		if (p.i[d] > 0) {
			vt_edge(vn_child(p.n[d], p.i[d] - 1), true, e);
			return true;
		}
	return false;
}

bool vt_get_le(struct vas_tree *t, uint64_t key, struct vt_ent *e)
{
	return vt_get_below(t, key, true, e);
}

bool vt_get_lt(struct vas_tree *t, uint64_t key, struct vt_ent *e)
{
	return vt_get_below(t, key, false, e);
}

bool vt_get_ge(struct vas_tree *t, uint64_t key, struct vt_ent *e)
{
	struct vt_path p;
	vt_descend(t, key, &p);
	struct vas_node *l = p.n[p.depth];
	uint32_t i = p.i[p.depth]; /* keys < key */
	if (i < vn_count(l)) {
		vn_get(l, i, e);
		return true;
	}
	for (uint32_t d = p.depth; d-- > 0;)
		if (p.i[d] < vn_count(p.n[d])) {
			vt_edge(vn_child(p.n[d], p.i[d] + 1), false, e);
			return true;
		}
	return false;
}

/*
 * Child i of inner node n holds no weight >= need (a search of the whole
 * child found none): its bound (A4, an upper bound) drops below need.
 */
static void vt_tighten(struct vas_node *n, uint32_t i, uint64_t need)
{
	if (vn_w(n, i) >= need)
		vn_setw(n, i, need - 1);
}

/*
 * First entry >= from with weight >= need below n. whole: every key below
 * n is >= from, so a miss proves the subtree has no such weight and its
 * bound is lowered (vt_tighten).
 */
static bool vt_fw_node(struct vas_node *n, uint64_t from, uint64_t need,
		       bool whole, struct vt_ent *e)
{
	uint32_t c = vn_count(n);
	if (vn_leaf(n)) {
		for (uint32_t i = whole ? 0 : vn_lower(n, from); i < c; i++) {
			vn_get(n, i, e);
			if (vas_val_weight(e->val) >= need)
				return true;
		}
		return false;
	}
	/* Child i > the one holding from: keys >= key[i - 1] > from. */
	uint32_t first = whole ? 0 : vn_upper(n, from);
	for (uint32_t i = first; i <= c; i++) {
		bool w = whole || i > first;
		if (vn_w(n, i) < need)
			continue;
		if (vt_fw_node(vn_child(n, i), from, need, w, e))
			return true;
		if (w)
			vt_tighten(n, i, need);
	}
	return false;
}

bool vt_first_weight(struct vas_tree *t, uint64_t from, uint64_t need,
		     struct vt_ent *e)
{
	LF_ASSERT(t->augment && need > 0);
	return vt_fw_node(vt_root(t), from, need, from == 0, e);
}

/*
 * Last entry < below with weight >= need under n: the mirror of
 * vt_fw_node(), scanning the other way (a direction argument would put a
 * branch into every step of both descents); whole: every key below n is
 * < below.
 */
static bool vt_lw_node(struct vas_node *n, uint64_t below, uint64_t need,
		       bool whole, struct vt_ent *e)
{
	uint32_t c = vn_count(n);
	if (vn_leaf(n)) {
		for (uint32_t i = whole ? c : vn_lower(n, below); i-- > 0;) {
			vn_get(n, i, e);
			if (vas_val_weight(e->val) >= need)
				return true;
		}
		return false;
	}
	/*
	 * Child i holds keys in [key[i - 1], key[i]): none below 'below' past
	 * child top; children before it end at key[i] < below.
	 */
	uint32_t top = whole ? c : vn_lower(n, below);
	for (uint32_t i = top + 1; i-- > 0;) {
		bool w = whole || i < top;
		if (vn_w(n, i) < need)
			continue;
		if (vt_lw_node(vn_child(n, i), below, need, w, e))
			return true;
		if (w)
			vt_tighten(n, i, need);
	}
	return false;
}

bool vt_last_weight(struct vas_tree *t, uint64_t below, uint64_t need,
		    struct vt_ent *e)
{
	LF_ASSERT(t->augment && need > 0);
	return vt_lw_node(vt_root(t), below, need, false, e);
}

/* ---- writer changes ---- */

/* Open a gap at slot i of locked n (and child slot i + 1 if inner). */
static void vn_gap(struct vas_node *n, uint32_t i)
{
	uint32_t c = vn_count(n);
	for (uint32_t j = c; j > i; j--)
		vn_copy(n, j, n, j - 1);
	if (!vn_leaf(n))
		for (uint32_t j = c + 1; j > i + 1; j--)
			vn_copy_child(n, j, n, j - 1);
	lf_olc_store_u32(&n->count, c + 1);
}

/* Close slot i of locked n (and child slot i + 1 if inner). */
static void vn_close(struct vas_node *n, uint32_t i)
{
	uint32_t c = vn_count(n);
	for (uint32_t j = i; j + 1 < c; j++)
		vn_copy(n, j, n, j + 1);
	if (!vn_leaf(n))
		for (uint32_t j = i + 1; j < c; j++)
			vn_copy_child(n, j, n, j + 1);
	lf_olc_store_u32(&n->count, c - 1);
}

/*
 * Split full, locked node n: its upper part goes to a new node r (locked);
 * returns r, with the separator in *sep. Half of it, or only the last
 * quarter when the slot to be added goes at the very end (ascending
 * inserts, which address allocation makes common: halves would leave every
 * node half empty for good). Either way both parts keep the minimum fill
 * (A2) once the slot is added to r.
 */
static struct vas_node *vt_split(struct vas_tree *t, struct vas_node *n,
				 bool append, uint64_t *sep)
{
	uint32_t c = vn_count(n), quarter = c / 4 > 0 ? c / 4 : 1;
	uint32_t half = append ? c - quarter : c / 2;
	struct vas_node *r = vn_take(t, lf_load_u32(&n->level, LF_RELAXED));
	if (vn_leaf(n)) {
		for (uint32_t j = half; j < c; j++)
			vn_copy(r, j - half, n, j);
		lf_olc_store_u32(&r->count, c - half);
		*sep = vn_key(r, 0);
	} else {
		/* Key half moves up; keys above it and their children go. */
		*sep = vn_key(n, half);
		for (uint32_t j = half + 1; j < c; j++)
			vn_copy(r, j - half - 1, n, j);
		for (uint32_t j = half + 1; j <= c; j++)
			vn_copy_child(r, j - half - 1, n, j);
		lf_olc_store_u32(&r->count, c - half - 1);
	}
	lf_olc_store_u32(&n->count, half);
	return r;
}

/*
 * The nodes the write in progress has write-locked: a list through the
 * nodes themselves (held_next), so a write may lock any number of them.
 * They stay locked until vt_commit() (two-phase locking, W1).
 */

/* Lock n for the write unless it already is. */
static void vt_lock(struct vas_tree *t, struct vas_node *n)
{
	struct vas *v = t->vas;
	if (n->held & VN_HELD)
		return;
	/* No other writer exists: this waits for nothing. */
	int rc = lf_vlock_write_lock(&n->lock);
	LF_ASSERT(rc == LF_VLOCK_OK);
	n->held = VN_HELD;
	n->held_next = v->held;
	v->held = n;
}

/* Add n, locked already (a node just taken from the reserve). */
static void vt_locked(struct vas_tree *t, struct vas_node *n)
{
	struct vas *v = t->vas;
	LF_ASSERT(n->held == 0);
	n->held = VN_HELD;
	n->held_next = v->held;
	v->held = n;
}

void vt_commit(struct vas *v)
{
	struct vas_node *n;
	while ((n = v->held) != NULL) {
		v->held = n->held_next;
		bool dropped = (n->held & VN_DROPPED) != 0;
		n->held = 0;
		if (dropped) {
			int rc = lf_vlock_write_unlock_obsolete(&n->lock);
			LF_ASSERT(rc == LF_VLOCK_OK);
			n->dropped_word =
				lf_load_u64(&n->lock.word, LF_RELAXED);
			vn_push(&v->freelist, &v->nfree, n);
		} else {
			int rc = lf_vlock_write_unlock(&n->lock);
			LF_ASSERT(rc == LF_VLOCK_OK);
		}
	}
}

/* n (locked by the write) leaves the tree: obsolete at the commit. */
static void vt_drop(struct vas_tree *t, struct vas_node *n)
{
	LF_ASSERT(n->held == VN_HELD); /* dropping a node not locked */
	vt_reshape(t);
	n->held |= VN_DROPPED;
	t->nodes--;
}

/* Publish a new root (the root lock tells readers the pointer moved). */
static void vt_set_root(struct vas_tree *t, struct vas_node *n)
{
	int rc = lf_vlock_write_lock(&t->rootlock);
	LF_ASSERT(rc == LF_VLOCK_OK);
	vt_reshape(t);
	lf_olc_store_ptr(&t->root, n);
	lf_vlock_write_unlock(&t->rootlock);
}

/* A new root above the old one, its only child; the path gains a level. */
static void vt_grow(struct vas_tree *t, struct vt_path *p)
{
	struct vas_node *old = p->n[0];
	struct vas_node *root =
		vn_take(t, lf_load_u32(&old->level, LF_RELAXED) + 1);
	vt_locked(t, root);
	lf_olc_store_ptr(&root->u.in.child[0], old);
	vn_setw(root, 0, t->augment ? vn_max(old) : 0);
	vn_sethint(root, 0, old);
	vt_set_root(t, root);
	t->height++;
	LF_ASSERT(p->depth + 1 < VAS_MAX_HEIGHT);
	for (uint32_t j = p->depth + 1; j > 0; j--) {
		p->n[j] = p->n[j - 1];
		p->i[j] = p->i[j - 1];
	}
	p->n[0] = root;
	p->i[0] = 0;
	p->depth++;
}

/* Insert separator sep with right child r after child p->i[d]. */
static void vt_insert_child(struct vas_tree *t, struct vt_path *p, uint32_t d,
			    uint64_t sep, struct vas_node *r)
{
	struct vas_node *n = p->n[d];
	uint32_t i = p->i[d];
	vn_gap(n, i);
	lf_olc_store_u64(&n->key[i], sep);
	lf_olc_store_ptr(&n->u.in.child[i + 1], r);
	vn_setw(n, i + 1, t->augment ? vn_max(r) : 0);
	vn_setw(n, i, t->augment ? vn_max(vn_child(n, i)) : 0);
	vn_sethint(n, i, vn_child(n, i));
	vn_sethint(n, i + 1, r);
}

/*
 * Make room for one more slot in p->n[d] (locked), splitting it and its
 * parents as needed (all held by the write); on return p->n[d'] and p->i[d']
 * name where the slot goes, maybe in the new right half, where d' = d + the
 * value returned: 1 if the tree grew a level (the path moved down by one).
 */
static uint32_t vt_make_room(struct vas_tree *t, struct vt_path *p, uint32_t d)
{
	struct vas_node *n = p->n[d];
	uint32_t grew;
	if (vn_count(n) < t->cap)
		return 0;
	if (d == 0) {
		vt_grow(t, p);
		grew = 1;
	} else {
		vt_lock(t, p->n[d - 1]);
		grew = vt_make_room(t, p, d - 1);
	}
	d += grew;
	uint64_t sep;
	struct vas_node *r = vt_split(t, n, p->i[d] == t->cap, &sep);
	vt_locked(t, r);
	vt_insert_child(t, p, d - 1, sep, r);
	if (d > 1) /* p->n[d - 1] gained a slot */
		vn_sethint(p->n[d - 2], p->i[d - 2], p->n[d - 1]);
	uint32_t c = vn_count(n);
	if (p->i[d] > c) {
		p->i[d] -= vn_leaf(n) ? c : c + 1;
		p->n[d] = r;
		p->i[d - 1]++;
	}
	return grew;
}

void vt_insert(struct vas_tree *t, const struct vt_ent *e)
{
	struct vt_path p;
	vt_descend(t, e->key, &p);
	struct vas_node *l = p.n[p.depth];
	LF_ASSERT(p.i[p.depth] >= vn_count(l) ||
		  vn_key(l, p.i[p.depth]) != e->key);
	vt_lock(t, l);
	vt_make_room(t, &p, p.depth); /* p.depth follows a growth */
	l = p.n[p.depth];
	vn_gap(l, p.i[p.depth]);
	vn_put(l, p.i[p.depth], e);
	if (p.depth > 0)
		vn_sethint(p.n[p.depth - 1], p.i[p.depth - 1], l);
	/* A split set the maxw of both halves before e went in. */
	vt_fix_up(t, &p, p.depth, 0, vas_val_weight(e->val));
}

void vt_update(struct vas_tree *t, const struct vt_ent *e)
{
	struct vt_path p;
	vt_descend(t, e->key, &p);
	struct vas_node *l = p.n[p.depth];
	uint32_t i = p.i[p.depth];
	LF_ASSERT(i < vn_count(l) && vn_key(l, i) == e->key);
	uint64_t w_old = vn_weight(l, i);
	vt_lock(t, l);
	vn_put(l, i, e);
	vt_fix_up(t, &p, p.depth, w_old, vas_val_weight(e->val));
}

/* ---- leaf-local writes (docs/design.md 3.3) ---- */

/*
 * Down to the leaf for key and lock it. Inside the shared side of the
 * exclusion no exclusive writer runs (X1), so no inner node and no root
 * changes: the inner nodes are read as the writer reads them (relaxed; the
 * acquire of vas_local_enter()'s load of excl orders them after the last
 * exclusive writer's changes). Leaf-local writers change leaf entries and
 * the count copies of their own slots only; two on one leaf take turns at
 * its version lock.
 */
/*
 * Write-lock leaf n for a leaf-local write. Another leaf-local writer may
 * hold it for a few hundred ns, or longer if it lost its CPU: spin, then
 * yield between looks (as the writer lock does, vas.c), so that on a
 * machine with more runnable threads than CPUs the waiter gives its time
 * slice to the holder. n is never obsolete while no exclusive writer runs.
 */
#define VT_LOCAL_SPINS 256

static void vt_local_wlock(struct vas_node *n)
{
	for (unsigned i = 0;; i++) {
		/* Relaxed: a look; the upgrade's CAS (acquire) takes it. */
		uint64_t w = lf_load_u64(&n->lock.word, LF_RELAXED);
		LF_ASSERT(!lf_vlock_word_obsolete(w));
		if (!lf_vlock_word_locked(w) && lf_vlock_upgrade(&n->lock, w))
			return;
		if (i < VT_LOCAL_SPINS) {
			lf_platform_pause();
		} else {
			i = 0;
			lf_platform_yield();
		}
	}
}

void vt_local_lock(struct vas_tree *t, uint64_t key, struct vt_local *l)
{
	struct vas_node *n = vt_root(t);
	l->up = NULL;
	l->has_lo = l->has_hi = false;
	while (!vn_leaf(n)) {
		uint32_t i = vn_upper(n, key);
		if (i > 0) {
			l->lo = vn_key(n, i - 1);
			l->has_lo = true;
		}
		if (i < vn_count(n)) {
			l->hi = vn_key(n, i);
			l->has_hi = true;
		}
		l->up = n;
		l->slot = i;
		n = vn_child(n, i);
	}
	l->leaf = n;
	vt_local_wlock(n);
}

void vt_local_unlock(struct vt_local *l)
{
	int rc = lf_vlock_write_unlock(&l->leaf->lock);
	LF_ASSERT(rc == LF_VLOCK_OK);
}

bool vt_local_get(const struct vt_local *l, uint64_t key, struct vt_ent *e)
{
	uint32_t i = vn_lower(l->leaf, key);
	if (i >= vn_count(l->leaf) || vn_key(l->leaf, i) != key)
		return false;
	vn_get(l->leaf, i, e);
	return true;
}

void vt_local_set(struct vt_local *l, const struct vt_ent *e)
{
	uint32_t i = vn_lower(l->leaf, e->key);
	LF_ASSERT(i < vn_count(l->leaf) && vn_key(l->leaf, i) == e->key);
	/* A leaf-local write moves no weight: no maxw changes (A4). */
	LF_ASSERT(vn_weight(l->leaf, i) == 0 && vas_val_weight(e->val) == 0);
	vn_put(l->leaf, i, e);
}

bool vt_local_insert(struct vas_tree *t, struct vt_local *l,
		     const struct vt_ent *e)
{
	struct vas_node *n = l->leaf;
	if (vn_count(n) >= t->cap || (l->has_lo && e->key < l->lo) ||
	    (l->has_hi && e->key >= l->hi))
		return false;
	LF_ASSERT(vas_val_weight(e->val) == 0);
	uint32_t i = vn_lower(n, e->key);
	LF_ASSERT(i >= vn_count(n) || vn_key(n, i) != e->key);
	vn_gap(n, i);
	vn_put(n, i, e);
	if (l->up != NULL)
		vn_sethint(l->up, l->slot, n); /* A9: this slot is ours */
	return true;
}

/* ---- deletion: merge with a sibling, or borrow from it (A2) ---- */

static uint32_t vt_min_fill(const struct vas_tree *t)
{
	return t->cap / 4 > 0 ? t->cap / 4 : 1;
}

/* Append right sibling r to l (both locked), with separator sep between. */
static void vt_merge_nodes(struct vas_node *l, struct vas_node *r, uint64_t sep)
{
	uint32_t lc = vn_count(l), rc = vn_count(r);
	if (vn_leaf(l)) {
		for (uint32_t j = 0; j < rc; j++)
			vn_copy(l, lc + j, r, j);
		lf_olc_store_u32(&l->count, lc + rc);
		return;
	}
	lf_olc_store_u64(&l->key[lc], sep);
	for (uint32_t j = 0; j < rc; j++)
		vn_copy(l, lc + 1 + j, r, j);
	for (uint32_t j = 0; j <= rc; j++)
		vn_copy_child(l, lc + 1 + j, r, j);
	lf_olc_store_u32(&l->count, lc + rc + 1);
}

/* Move one slot from l's end to r's front, through separator *sep. */
static void vt_shift_right(struct vas_node *l, struct vas_node *r,
			   uint64_t *sep)
{
	uint32_t lc = vn_count(l), rc = vn_count(r);
	if (vn_leaf(l)) {
		vn_gap(r, 0);
		vn_copy(r, 0, l, lc - 1);
		*sep = vn_key(r, 0);
	} else {
		for (uint32_t j = rc; j > 0; j--)
			vn_copy(r, j, r, j - 1);
		for (uint32_t j = rc + 1; j > 0; j--)
			vn_copy_child(r, j, r, j - 1);
		lf_olc_store_u64(&r->key[0], *sep);
		vn_copy_child(r, 0, l, lc);
		lf_olc_store_u32(&r->count, rc + 1);
		*sep = vn_key(l, lc - 1);
	}
	lf_olc_store_u32(&l->count, lc - 1);
}

/* Move one slot from r's front to l's end, through separator *sep. */
static void vt_shift_left(struct vas_node *l, struct vas_node *r, uint64_t *sep)
{
	uint32_t lc = vn_count(l), rc = vn_count(r);
	if (vn_leaf(l)) {
		vn_copy(l, lc, r, 0);
		lf_olc_store_u32(&l->count, lc + 1);
		vn_close(r, 0);
		*sep = vn_key(r, 0);
		return;
	}
	lf_olc_store_u64(&l->key[lc], *sep);
	vn_copy_child(l, lc + 1, r, 0);
	lf_olc_store_u32(&l->count, lc + 1);
	*sep = vn_key(r, 0);
	for (uint32_t j = 0; j + 1 < rc; j++)
		vn_copy(r, j, r, j + 1);
	for (uint32_t j = 0; j < rc; j++)
		vn_copy_child(r, j, r, j + 1);
	lf_olc_store_u32(&r->count, rc - 1);
}

/* The root is an inner node with one child left: that child is the root. */
static void vt_shrink(struct vas_tree *t)
{
	struct vas_node *root = vt_root(t);
	while (!vn_leaf(root) && vn_count(root) == 0) {
		vt_lock(t, root);
		vt_set_root(t, vn_child(root, 0));
		vt_drop(t, root);
		t->height--;
		root = vt_root(t);
	}
}

/*
 * p->n[d] lost a slot, of weight w_old. While it is under the minimum
 * fill, merge it with a sibling if both fit in one node (then its parent
 * lost a slot: go up), or else borrow one slot from the sibling. Keeps
 * maxw right on the way.
 */
static void vt_rebalance(struct vas_tree *t, struct vt_path *p, uint32_t d,
			 uint64_t w_old)
{
	uint32_t leaf = d;
	while (d > 0 && vn_count(p->n[d]) < vt_min_fill(t)) {
		struct vas_node *up = p->n[d - 1];
		uint32_t pi = p->i[d - 1];
		uint32_t li = pi > 0 ? pi - 1 : pi; /* separator between l, r */
		struct vas_node *l = vn_child(up, li),
				*r = vn_child(up, li + 1);
		vt_lock(t, up);
		vt_lock(t, l);
		vt_lock(t, r);
		uint64_t sep = vn_key(up, li);
		uint32_t need =
			vn_count(l) + vn_count(r) + (vn_leaf(l) ? 0 : 1);
		if (need <= t->cap) {
			vt_merge_nodes(l, r, sep);
			vn_close(up, li);
			vt_drop(t, r);
			vn_setw(up, li, t->augment ? vn_max(l) : 0);
			vn_sethint(up, li, l);
			p->n[d] = l;
			p->i[d - 1] = li;
			d--;
			continue;
		}
		vt_reshape(t); /* a separator moves */
		if (r == p->n[d])
			vt_shift_right(l, r, &sep);
		else
			vt_shift_left(l, r, &sep);
		lf_olc_store_u64(&up->key[li], sep);
		vn_setw(up, li, t->augment ? vn_max(l) : 0);
		vn_setw(up, li + 1, t->augment ? vn_max(r) : 0);
		vn_sethint(up, li, l);
		vn_sethint(up, li + 1, r);
		d--;
		break;
	}
	/* p->n[d] lost a slot (or is as it was): its parent's copy (A9). */
	if (d > 0)
		vn_sethint(p->n[d - 1], p->i[d - 1], p->n[d]);
	if (d == leaf)
		vt_fix_up(t, p, d, w_old, 0);
	else
		vt_fix_up(t, p, d, VT_W_UNKNOWN, 0);
}

void vt_delete(struct vas_tree *t, uint64_t key)
{
	struct vt_path p;
	vt_descend(t, key, &p);
	struct vas_node *l = p.n[p.depth];
	uint32_t i = p.i[p.depth];
	LF_ASSERT(i < vn_count(l) && vn_key(l, i) == key);
	uint64_t w_old = t->augment ? vn_weight(l, i) : 0;
	vt_lock(t, l);
	vn_close(l, i);
	vt_rebalance(t, &p, p.depth, w_old);
	vt_shrink(t);
}

/* ---- structural check (writer lock held) ---- */

struct vt_ck {
	struct vas_tree *t;
	uint32_t leaf_depth;
	bool have_leaf_depth;
	uint64_t entries, nodes;
	uint64_t where;
};

static int vt_ck_fail(struct vt_ck *k, uint64_t where, int inv)
{
	k->where = where;
	return inv;
}

/*
 * A1-A4 and A9 of one subtree (docs/design.md 3.5): order, fill, depth,
 * maxw, the copies of the children's counts.
 */
static int vt_ck_node(struct vt_ck *k, struct vas_node *n, uint32_t depth,
		      uint64_t lo, bool has_lo, uint64_t hi, bool has_hi,
		      uint64_t *maxp)
{
	uint32_t c = vn_count(n);
	k->nodes++;
	if (c > k->t->cap || (depth > 0 && c < vt_min_fill(k->t)) ||
	    (!vn_leaf(n) && c == 0))
		return vt_ck_fail(k, c, 2);
	for (uint32_t i = 0; i < c; i++) {
		uint64_t key = vn_key(n, i);
		if ((i > 0 && vn_key(n, i - 1) >= key) ||
		    (has_lo && key < lo) || (has_hi && key >= hi))
			return vt_ck_fail(k, key, 1);
	}
	if (vn_leaf(n)) {
		if (k->have_leaf_depth && k->leaf_depth != depth)
			return vt_ck_fail(k, depth, 3);
		k->leaf_depth = depth;
		k->have_leaf_depth = true;
		k->entries += c;
		*maxp = vn_max(n);
		return 0;
	}
	uint64_t m = 0;
	for (uint32_t i = 0; i <= c; i++) {
		struct vas_node *ch = vn_child(n, i);
		uint64_t cm;
		if (lf_load_u32(&ch->level, LF_RELAXED) + 1 !=
		    lf_load_u32(&n->level, LF_RELAXED))
			return vt_ck_fail(k, i, 3);
		int rc = vt_ck_node(k, ch, depth + 1,
				    i > 0 ? vn_key(n, i - 1) : lo,
				    i > 0 || has_lo, i < c ? vn_key(n, i) : hi,
				    i < c || has_hi, &cm);
		if (rc)
			return rc;
		if (k->t->augment && vn_w(n, i) < cm)
			return vt_ck_fail(k, i < c ? vn_key(n, i) : hi, 4);
		if (vn_hint(n, i) != vn_count(ch))
			return vt_ck_fail(k, i < c ? vn_key(n, i) : hi, 9);
		m = cm > m ? cm : m;
	}
	*maxp = m;
	return 0;
}

int vt_check(struct vas_tree *t, uint64_t *nentries, uint64_t *where)
{
	struct vt_ck k = { .t = t };
	uint64_t m;
	int rc = vt_ck_node(&k, vt_root(t), 0, 0, false, 0, false, &m);
	if (rc == 0 && (k.leaf_depth + 1 != t->height || k.nodes != t->nodes))
		rc = vt_ck_fail(&k, k.nodes, 3);
	*nentries = k.entries;
	*where = k.where;
	return rc;
}
