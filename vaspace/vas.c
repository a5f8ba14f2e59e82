/*
 * vas.c: the virtual address range allocator on the trees of vas_tree.c.
 *
 * The address tree holds every range of the region, keyed by its start in
 * quanta, its value the length in quanta and whether it is free (vas_val);
 * allocated ranges carry the user's tag. Its inner nodes keep a bound on
 * the largest free length below each child (never below it; lowered by the
 * searches it misleads), so first fit is a descent (O(log n) for an
 * alignment up to the quantum and bounds that are tight; a larger alignment
 * may skip candidates that are long enough but cannot be aligned, O(log n)
 * each). The size tree holds each free range once more, keyed by
 * vas_size_key(), so best fit is one lower-bound search (again O(log n) per
 * candidate skipped for alignment).
 *
 * Writers take the writer lock, reserve every node the call may need (so a
 * failing node source fails the call before anything changed: the vas is
 * exactly as before), then change the trees; every node changed stays
 * locked until the commit in vas_wend() (two-phase locking, W1), so a call
 * is one step for readers whatever it changed: a replace (MAP_FIXED) over
 * several ranges, an unmap over ranges and holes, a protect that splits and
 * merges. The commit count lets readers that need two entries (vas_find
 * over a hole) check that both came from one state.
 *
 * With per-context caching on (docs/design.md 3.3), a small allocation and
 * a free of a small whole range are leaf-local writes instead: under the
 * shared side of a big-reader exclusion (a flag in the caller's context,
 * vas_local_enter) whose exclusive side is the writer lock plus a wait for
 * every flag (vas_wlock), they change one address-tree leaf under its lock:
 * a range held by the context (cached after a free, or its reservation)
 * becomes allocated, or an allocated one becomes cached. Held ranges are
 * free to readers but out of the free-range index; every exclusive call
 * that must see free space returns them first (vas_drain_span,
 * vas_drain_all). Invariants A10, A11 and X1.
 */
#include "vas_i.h"

/*
 * Size-tree keys: enc(length) << sshift | start, sshift the bits of a
 * start. Lengths below sexact = 2^(63 - sshift) are exact; longer ones are
 * one class per power of two past it (a region of up to 2^32 quanta has
 * only exact lengths); best fit scans the class it lands in.
 */
static uint64_t vas_size_enc(const struct vas *v, uint64_t len)
{
	if (len < v->sexact)
		return len;
	unsigned lg = 63u - (unsigned)__builtin_clzll(len);
	return v->sexact + lg - (63u - (unsigned)__builtin_clzll(v->sexact));
}

static uint64_t vas_size_key(const struct vas *v, uint64_t len, uint64_t s)
{
	return vas_size_enc(v, len) << v->sshift | s;
}

/*
 * The writer lock (lf_spin.h: the acquire in lf_spin_trylock() pairs with
 * the last writer's release). A waiter spins VAS_WLOCK_SPINS pauses, about
 * a write's length, then yields its CPU between looks
 * (lf_platform_yield): on a machine with more runnable threads than CPUs
 * a holder that lost its CPU is not waited for by burning a time slice.
 */
#define VAS_WLOCK_SPINS 256

static void vas_wlock_spin(struct vas *v)
{
	while (!lf_spin_trylock(&v->wlock)) {
		/* Relaxed: only a look; the trylock takes it. */
		for (unsigned i = 0;
		     i < VAS_WLOCK_SPINS && lf_spin_held(&v->wlock, LF_RELAXED);
		     i++)
			lf_platform_pause();
		if (lf_spin_held(&v->wlock, LF_RELAXED))
			lf_platform_yield();
	}
}

/*
 * The exclusion between leaf-local calls (the shared side, one flag per
 * context) and every other write (the exclusive side: the writer lock, then
 * excl, then a wait for every context's flag), docs/design.md 3.3 (X1). A
 * big-reader lock whose readers are the leaf-local writers: the shared side
 * writes its own context's line only. Dekker's pattern: each side stores
 * its flag, then loads the other's, all four seq_cst (no standalone fence:
 * ThreadSanitizer sees the edges), so at least one side sees the other.
 */
static void vas_excl_wait(uint32_t *w)
{
	if (++*w < VAS_WLOCK_SPINS) {
		lf_platform_pause();
		return;
	}
	*w = 0;
	lf_platform_yield();
}

static void vas_wlock(struct vas *v)
{
	vas_wlock_spin(v);
	/*
	 * Relaxed: written only under the writer lock (vas_set_caching()),
	 * which we hold. With caching off no leaf-local call writes anything
	 * (each reads caching inside its shared side and leaves: the acquire
	 * there), and none can find it on before vas_set_caching() takes this
	 * lock after us, so the exclusive side is the writer lock alone: no
	 * store of excl and no wait, which cost the serialized writer a
	 * full barrier a call.
	 */
	if (lf_load_u32(&v->caching, LF_RELAXED) == 0)
		return;
	/* Seq_cst: Dekker with vas_local_enter() (store, then load). */
	lf_store_u32(&v->excl, 1, LF_SEQ_CST);
	/* Acquire: pairs with the push in vas_ctx_register(), made under the
	 * writer lock, so every context that can enter is on the list. */
	for (struct vas_ctx *c = lf_load_ptr(&v->ctxs, LF_ACQUIRE); c;
	     c = c->next) {
		uint32_t w = 0;
		/* Seq_cst: Dekker; also pairs with the release store of
		 * vas_local_exit(): the leaf-local call's changes are seen. */
		while (lf_load_u32(&c->in_local, LF_SEQ_CST) != 0)
			vas_excl_wait(&w);
	}
}

static void vas_wunlock(struct vas *v)
{
	/* Relaxed: ours to read (only writers under the lock store it). */
	if (lf_load_u32(&v->excl, LF_RELAXED) != 0)
		/* Release: pairs with the seq_cst load of vas_local_enter(): a
		 * leaf-local call that enters next sees this write. */
		lf_store_u32(&v->excl, 0, LF_RELEASE);
	lf_spin_unlock(&v->wlock);
}

/* The shared side, for a leaf-local call of context c. */
static void vas_local_enter(struct vas *v, struct vas_ctx *c)
{
	for (;;) {
		/* Seq_cst, the store and the load: Dekker with vas_wlock(). */
		lf_store_u32(&c->in_local, 1, LF_SEQ_CST);
		if (lf_load_u32(&v->excl, LF_SEQ_CST) == 0)
			return;
		/* Relaxed: backing off, nothing was written; the exclusive
		 * writer's seq_cst load sees it (coherence) and goes on. */
		lf_store_u32(&c->in_local, 0, LF_RELAXED);
		uint32_t w = 0;
		/* Relaxed: a look; the seq_cst load above decides. */
		while (lf_load_u32(&v->excl, LF_RELAXED) != 0)
			vas_excl_wait(&w);
	}
}

static void vas_local_exit(struct vas_ctx *c)
{
	/* Release: pairs with the seq_cst load in vas_wlock(). */
	lf_store_u32(&c->in_local, 0, LF_RELEASE);
}

/* Statistics words: written by the writer alone, read by vas_stats(). */
static void vas_count(lf_atomic_u64 *a, int64_t d)
{
	/* Relaxed: one writer (the writer lock); stats read a snapshot. */
	lf_store_u64(a, lf_load_u64(a, LF_RELAXED) + (uint64_t)d, LF_RELAXED);
}

/*
 * The same for a context's counters (its owner writes them): one word per
 * code; vas_stats() sorts them into refusals and rejected bad input.
 */
static int vas_fail(struct vas_ctx *c, int err)
{
	vas_count(&c->rejected[-err], 1);
	return err;
}

static unsigned vas_log2(uint64_t x)
{
	return 63u - (unsigned)__builtin_clzll(x);
}

/* ---- the free-range index ---- */

static void vas_free_add(struct vas *v, uint64_t s, uint64_t len)
{
	struct vt_ent e = { vas_size_key(v, len, s), len, 0 };
	vt_insert(&v->size, &e);
	vas_count(&v->free_ranges, 1);
	vas_count(&v->free_q, (int64_t)len);
}

static void vas_free_del(struct vas *v, uint64_t s, uint64_t len)
{
	vt_delete(&v->size, vas_size_key(v, len, s));
	vas_count(&v->free_ranges, -1);
	vas_count(&v->free_q, -(int64_t)len);
}

static void vas_put_attr(struct vas *v, uint64_t key, uint64_t len, bool free,
			 uint32_t attr, uintptr_t tag, bool insert)
{
	struct vt_ent e = { key, vas_val_attr(len, free ? 0 : attr, free),
			    free ? 0 : tag };
	if (insert)
		vt_insert(&v->addr, &e);
	else
		vt_update(&v->addr, &e);
}

static void vas_put(struct vas *v, uint64_t key, uint64_t len, bool free,
		    uintptr_t tag, bool insert)
{
	struct vt_ent e = { key, vas_val(len, free), free ? 0 : tag };
	if (insert)
		vt_insert(&v->addr, &e);
	else
		vt_update(&v->addr, &e);
}

/* ---- set-up ---- */

static int vas_create_check(uint64_t base, uint64_t size, uint64_t quantum,
			    const struct vas_node_source *src, uint32_t keys)
{
	if (src == NULL || src->get == NULL || src->put == NULL)
		return VAS_EINVAL;
	if (quantum == 0 || (quantum & (quantum - 1)) || size == 0)
		return VAS_EINVAL;
	if ((base | size) & (quantum - 1))
		return VAS_EALIGN;
	if (base + size < base ||
	    size / quantum >= ((uint64_t)1 << VAS_MAX_QBITS))
		return VAS_ERANGE;
	if (keys != 0 && (keys < VAS_MIN_KEYS || keys > VAS_MAX_KEYS))
		return VAS_EINVAL;
	return VAS_OK;
}

/* Every node the vas holds, back to the source (no reader remains). */
static void vas_release_all(struct vas *v)
{
	struct vas_node *x;
	while ((x = v->freelist) != NULL) {
		v->freelist = x->next_free;
		v->src.put(v->src.arg, x);
	}
	while ((x = v->reserve) != NULL) {
		v->reserve = x->next_free;
		v->src.put(v->src.arg, x);
	}
	v->nfree = v->nreserve = 0;
}

int vas_create(struct vas *v, uint64_t base, uint64_t size, uint64_t quantum,
	       const struct vas_node_source *src, uint32_t node_keys,
	       uint64_t high_water)
{
	if (v == NULL)
		return VAS_EINVAL;
	int rc = vas_create_check(base, size, quantum, src, node_keys);
	if (rc != VAS_OK)
		return rc;
	*v = (struct vas){ .base = base,
			   .src = *src,
			   .high_water = high_water };
	v->qshift = vas_log2(quantum);
	v->nq = size >> v->qshift;
	v->sshift = 1;
	while (((uint64_t)1 << v->sshift) < v->nq)
		v->sshift++;
	v->sexact = (uint64_t)1 << (63 - v->sshift);
	/* A reservation: VAS_PC_RESV quanta, a sixteenth of a small region. */
	v->resv_q = v->nq / 16 < VAS_PC_RESV ? v->nq / 16 : VAS_PC_RESV;
	lf_spin_init(&v->wlock);
	lf_init_u64(&v->commits, 0);
	lf_init_ptr(&v->ctxs, NULL);
	lf_epoch_domain_init(&v->epoch, VAS_EPOCH_POLL);
	/* Nodes are 4 KiB and retired rarely: advance at every poll's worth,
	 * so E7 bounds a context's pending nodes by 3 * VAS_EPOCH_POLL
	 * (docs/design.md 3.4), not by the default's 34 polls' worth. */
	lf_epoch_domain_set_advance_at(&v->epoch, VAS_EPOCH_POLL);
	uint32_t cap = node_keys ? node_keys : VAS_MAX_KEYS;
	if ((rc = vt_init(&v->addr, v, cap, true)) != VAS_OK ||
	    (rc = vt_init(&v->size, v, cap, false)) != VAS_OK ||
	    (rc = vn_reserve(v, 2)) != VAS_OK) {
		if (lf_load_ptr(&v->addr.root, LF_RELAXED))
			vt_destroy(&v->addr);
		if (lf_load_ptr(&v->size.root, LF_RELAXED))
			vt_destroy(&v->size);
		vas_release_all(v);
		return rc;
	}
	vas_put(v, 0, v->nq, true, 0, true);
	vas_free_add(v, 0, v->nq);
	vt_commit(v);
	return VAS_OK;
}

int vas_destroy(struct vas *v)
{
	for (struct vas_ctx *c = lf_load_ptr(&v->ctxs, LF_ACQUIRE); c;
	     c = c->next) {
		struct lf_epoch_record_stats rs;
		lf_epoch_record_stats(&c->rec, &rs);
		if (rs.registered)
			return VAS_EINVAL;
	}
	/* Run every pending retirement: the nodes go back to the source. */
	if (lf_epoch_register(&v->epoch, &v->own) == LF_EPOCH_OK) {
		lf_epoch_barrier(&v->own);
		lf_epoch_unregister(&v->own);
	}
	vt_destroy(&v->addr);
	vt_destroy(&v->size);
	vas_release_all(v);
	return VAS_OK;
}

int vas_ctx_register(struct vas *v, struct vas_ctx *c)
{
	if (v == NULL || c == NULL || (c->vas != NULL && c->vas != v))
		return VAS_EINVAL;
	int rc = lf_epoch_register(&v->epoch, &c->rec);
	if (rc != LF_EPOCH_OK)
		return VAS_EINVAL;
	if (c->vas == v)
		return VAS_OK; /* listed already, at its first registration */
	c->vas = v;
	/* Under the writer lock: an exclusive writer's walk of the contexts
	 * (vas_wlock) sees every context that can enter the shared side. */
	vas_wlock(v);
	/* Relaxed: the CAS re-checks it. */
	struct vas_ctx *head = lf_load_ptr(&v->ctxs, LF_RELAXED);
	do
		c->next = head;
	/* Release: c's fields, for vas_stats()'s acquire walk. */
	while (!lf_cas_ptr(&v->ctxs, (void **)&head, c, LF_RELEASE));
	vas_wunlock(v);
	return VAS_OK;
}

int vas_ctx_unregister(struct vas_ctx *c)
{
	if (c == NULL || c->vas == NULL ||
	    lf_epoch_unregister(&c->rec) != LF_EPOCH_OK)
		return VAS_ENOTREG;
	return VAS_OK;
}

/* A registered context, or NULL. */
static struct vas *vas_of(struct vas_ctx *c)
{
	if (c == NULL || c->vas == NULL)
		return NULL;
	/* Relaxed: the owner's own record. */
	return lf_load_u32(&c->rec.in_use, LF_RELAXED) ? c->vas : NULL;
}

/* ---- writers ---- */

/*
 * The nodes k inserts into tree t may need: each may split every level
 * below the root (vt_insert_nodes() counts that and a new root); a root
 * that just grew has one key, so among the three inserts of one call at
 * most one grows the tree, by one level (+ 1).
 */
static uint32_t vas_need(const struct vas_tree *t, uint32_t k)
{
	return k ? k * vt_insert_nodes(t) + 1 : 0;
}

/* Inserts per call, address tree and size tree (deletes need no node). */
#define VAS_W_CARVE 2, 2   /* alloc, alloc_at, map: vas_carve() */
#define VAS_W_FREE 2, 2    /* free: head and tail; the free range */
#define VAS_W_REPLACE 3, 2 /* up to three pieces, two of them free */
#define VAS_W_UNMAP 3, 1   /* head, freed span, tail; one free range */
#define VAS_W_PROTECT 2, 0 /* the splits at both ends */
/* alloc with caching: carve, the rest of a reservation, one returned */
#define VAS_W_CARVE_HELD 3, 3

static uint32_t vas_wneed(const struct vas *v, uint32_t ka, uint32_t ks)
{
	return vas_need(&v->addr, ka) + vas_need(&v->size, ks);
}

/*
 * Take the writer lock and set aside the nodes a call may need for ka
 * inserts into the address tree and ks into the size tree.
 */
static int vas_wbegin(struct vas *v, struct vas_ctx *c, uint32_t ka,
		      uint32_t ks)
{
	vas_wlock(v);
	v->wctx = c;
	int rc = vn_reserve(v, vas_wneed(v, ka, ks));
	if (rc != VAS_OK)
		vas_wunlock(v);
	return rc;
}

/*
 * The end of a write: its commit. The count moves before any node is
 * unlocked (release: pairs with the acquire loads of vas_find()), so a
 * reader that saw a node of this write unlocked sees the count moved.
 */
static void vas_wend(struct vas *v, struct vas_ctx *c)
{
	if (v->held != NULL)
		lf_fetch_add_u64(&v->commits, 1, LF_RELEASE);
	vt_commit(v);
	vn_retire_surplus(v, &c->rec);
	v->wctx = NULL;
	vas_wunlock(v);
}

/* The first quantum at or after s where an address aligned to align is. */
static uint64_t vas_align_q(const struct vas *v, uint64_t s, uint64_t align)
{
	uint64_t a = v->base + (s << v->qshift);
	a = (a + align - 1) & ~(align - 1);
	return (a - v->base) >> v->qshift;
}

struct vas_fit {
	uint64_t s, len; /* the free range */
	uint64_t at;     /* where the block goes */
};

/*
 * Where n quanta aligned to align go in free range f cut to the window
 * [lo, hi): the lowest such place, or the highest if top. Addresses are
 * aligned as absolute addresses (base + quanta); none may wrap.
 */
static bool vas_fits_in(const struct vas *v, struct vas_fit *f, uint64_t n,
			uint64_t align, uint64_t lo, uint64_t hi, bool top)
{
	uint64_t a = f->s > lo ? f->s : lo;
	uint64_t b = f->s + f->len < hi ? f->s + f->len : hi;
	if (a >= b || b - a < n)
		return false;
	if (!top) {
		f->at = vas_align_q(v, a, align);
		return f->at >= a && f->at <= b - n;
	}
	uint64_t addr = v->base + ((b - n) << v->qshift);
	addr &= ~(align - 1);
	if (addr < v->base)
		return false;
	f->at = (addr - v->base) >> v->qshift;
	return f->at >= a;
}

/* A placement request in quanta. */
struct vas_want {
	uint64_t n, align, lo, hi;
	bool top;
};

/* The free range with the lowest (or highest) place for the block. */
static bool vas_first_fit(struct vas *v, const struct vas_want *w,
			  struct vas_fit *f)
{
	struct vt_ent e;
	if (w->top) {
		uint64_t below = w->hi;
		while (vt_last_weight(&v->addr, below, w->n, &e) &&
		       e.key + vas_val_len(e.val) > w->lo) {
			f->s = e.key;
			f->len = vas_val_len(e.val);
			if (vas_fits_in(v, f, w->n, w->align, w->lo, w->hi,
					true))
				return true;
			below = e.key; /* too short once cut: the one below */
		}
		return false;
	}
	if (!vt_get_le(&v->addr, w->lo, &e))
		LF_ASSERT(!"key 0 always exists");
	uint64_t from = e.key;
	while (vt_first_weight(&v->addr, from, w->n, &e) && e.key < w->hi) {
		f->s = e.key;
		f->len = vas_val_len(e.val);
		if (vas_fits_in(v, f, w->n, w->align, w->lo, w->hi, false))
			return true;
		from = e.key + 1; /* too short once aligned: the next one */
	}
	return false;
}

/*
 * The shortest free range where the block fits (lowest start on ties).
 * Exact size classes come in (length, start) order: the first that fits
 * is the answer; in a class of lengths past sexact the whole class is
 * scanned for its shortest.
 */
static bool vas_best_fit(struct vas *v, const struct vas_want *w,
			 struct vas_fit *f)
{
	struct vt_ent e;
	uint64_t key = vas_size_key(v, w->n, 0), smask;
	uint64_t cls = UINT64_MAX;
	bool found = false;
	smask = ((uint64_t)1 << v->sshift) - 1;
	while (vt_get_ge(&v->size, key, &e)) {
		uint64_t ecls = e.key >> v->sshift;
		if (found && ecls != cls)
			break;
		struct vas_fit g = { e.key & smask, e.val, 0 };
		key = e.key + 1;
		if (!vas_fits_in(v, &g, w->n, w->align, w->lo, w->hi, w->top))
			continue;
		if (ecls < v->sexact) {
			*f = g;
			return true;
		}
		if (!found || g.len < f->len)
			*f = g;
		found = true;
		cls = ecls;
	}
	return found;
}

/* Allocate [at, at + n) out of free range f, with attr and tag. */
static void vas_carve(struct vas *v, const struct vas_fit *f, uint64_t n,
		      uint32_t attr, uintptr_t tag)
{
	uint64_t rest = f->s + f->len - (f->at + n);
	vas_free_del(v, f->s, f->len);
	if (rest) {
		vas_put(v, f->at + n, rest, true, 0, true);
		vas_free_add(v, f->at + n, rest);
	}
	if (f->at > f->s) {
		vas_put_attr(v, f->at, n, false, attr, tag, true);
		vas_put(v, f->s, f->at - f->s, true, 0, false);
		vas_free_add(v, f->s, f->at - f->s);
	} else {
		vas_put_attr(v, f->s, n, false, attr, tag, false);
	}
	vas_count(&v->ranges, 1);
}

/*
 * Free range [s, s + len) at key s: merge with free neighbours (ordinary
 * ones: a held neighbour stays its context's, A6), index it.
 */
static void vas_coalesce(struct vas *v, uint64_t s, uint64_t len)
{
	struct vt_ent e;
	if (vt_get_ge(&v->addr, s + 1, &e) && vas_val_plain(e.val)) {
		uint64_t nl = vas_val_len(e.val);
		vas_free_del(v, e.key, nl);
		vas_put(v, s, len + nl, true, 0, false);
		vt_delete(&v->addr, e.key);
		len += nl;
	}
	if (vt_get_lt(&v->addr, s, &e) && vas_val_plain(e.val)) {
		uint64_t pl = vas_val_len(e.val);
		vas_free_del(v, e.key, pl);
		vas_put(v, e.key, pl + len, true, 0, false);
		vt_delete(&v->addr, s);
		s = e.key;
		len += pl;
	}
	vas_free_add(v, s, len);
}

/* ---- held entries: per-context caching (docs/design.md 3.3) ---- */

/* Statistics of a leaf-local write: the context's own words (o). */
static void vas_local_count(struct vas_ctx *c, int64_t ranges, int64_t frees,
			    int64_t q)
{
	vas_count(&c->d_ranges, ranges);
	vas_count(&c->d_free_ranges, frees);
	vas_count(&c->d_free_q, q);
}

/*
 * A leaf-local write is done (before its leaf is unlocked). Release: pairs
 * with the acquire loads of vas_commits(), as the vas's count does.
 */
static void vas_lcommit(struct vas_ctx *c)
{
	/* Relaxed load: the owner alone writes it. */
	lf_store_u64(&c->lcommits, lf_load_u64(&c->lcommits, LF_RELAXED) + 1,
		     LF_RELEASE);
}

static struct vt_ent vas_held_ent(uint64_t key, uint64_t len, uint32_t mark,
				  struct vas_ctx *c)
{
	return (struct vt_ent){ key, vas_val_attr(len, mark, true),
				(uintptr_t)c };
}

/* Take the record of held entry key (of kind mark) off its context. */
static void vas_held_forget(struct vas_ctx *o, uint64_t key, uint32_t mark)
{
	if (mark == VAS_HELD_RESV) {
		LF_ASSERT(o->resv.len != 0 && o->resv.key == key);
		o->resv.len = 0;
		return;
	}
	for (uint32_t i = 0; i < o->ncache; i++) {
		if (o->cache[i].key == key) {
			o->cache[i] = o->cache[--o->ncache];
			return;
		}
	}
	LF_ASSERT(!"a cached entry its context does not record");
}

/*
 * Exclusive writer: the held entry at key goes back to the free ranges
 * (coalesced, in the size tree). Readers saw it free and still do. One
 * insert into the size tree: the caller reserved its nodes.
 */
static void vas_held_return(struct vas *v, uint64_t key)
{
	struct vt_ent e;
	if (!vt_get_le(&v->addr, key, &e) || e.key != key)
		LF_ASSERT(!"a held entry is where its record says");
	uint32_t mark = vas_val_held(e.val);
	LF_ASSERT(mark != 0);
	vas_held_forget((struct vas_ctx *)e.tag, key, mark);
	uint64_t len = vas_val_len(e.val);
	vas_count(&v->free_ranges, -1);
	vas_count(&v->free_q, -(int64_t)len);
	vas_put(v, key, len, true, 0, false);
	vas_coalesce(v, key, len);
}

/* The nodes one return needs, beside what the call reserved (need). */
static int vas_held_reserve(struct vas *v, uint32_t need)
{
	return vn_reserve(v, need + vt_insert_nodes(&v->size) + 1);
}

/*
 * Exclusive writer: every held entry overlapping [a, b) goes back to the
 * free ranges, one at a time, each with its nodes reserved first. A
 * failing source stops it with VAS_ENOMEM: what was returned is free as
 * it was (readers see no change), the rest stays held.
 */
static int vas_drain_span(struct vas *v, uint64_t a, uint64_t b, uint32_t need)
{
	struct vt_ent e;
	if (!vt_get_le(&v->addr, a, &e))
		LF_ASSERT(!"key 0 always exists");
	for (;;) {
		if (vas_val_held(e.val)) {
			int rc = vas_held_reserve(v, need);
			if (rc != VAS_OK)
				return rc;
			vas_held_return(v, e.key);
			if (!vt_get_le(&v->addr, e.key, &e))
				LF_ASSERT(!"key 0 always exists");
		}
		uint64_t t = e.key + vas_val_len(e.val);
		if (t >= b || !vt_get_ge(&v->addr, t, &e))
			return VAS_OK;
	}
}

/*
 * Exclusive writer: every context's held entries go back (before an
 * allocation fails: VAS_ENOSPC stays exact, as kmem drains its magazines).
 */
static int vas_drain_all(struct vas *v, uint32_t need)
{
	/* Acquire: pairs with the release push in vas_ctx_register(). */
	for (struct vas_ctx *o = lf_load_ptr(&v->ctxs, LF_ACQUIRE); o;
	     o = o->next) {
		while (o->ncache > 0 || o->resv.len > 0) {
			int rc = vas_held_reserve(v, need);
			if (rc != VAS_OK)
				return rc;
			vas_held_return(v, o->ncache > 0 ? o->cache[0].key
							 : o->resv.key);
		}
	}
	return VAS_OK;
}

/* Whether vas_alloc of w may be served from the caller's held entries. */
static bool vas_cacheable(const struct vas *v, uint64_t n, uint64_t align)
{
	return n <= VAS_PC_QMAX && align <= ((uint64_t)1 << v->qshift);
}

/* Leaf-local: a cached range of n quanta becomes allocated again. */
static bool vas_local_reuse(struct vas *v, struct vas_ctx *c, uint64_t n,
			    uintptr_t tag, uint64_t *at)
{
	uint32_t i = c->ncache;
	while (i > 0 && c->cache[i - 1].len != n)
		i--;
	if (i == 0)
		return false;
	struct vt_local l;
	struct vt_ent e;
	uint64_t key = c->cache[i - 1].key;
	vt_local_lock(&v->addr, key, &l);
	if (!vt_local_get(&l, key, &e) ||
	    vas_val_held(e.val) != VAS_HELD_CACHED || e.tag != (uintptr_t)c ||
	    vas_val_len(e.val) != n)
		LF_ASSERT(!"a cached entry is where its record says (A10)");
	e = (struct vt_ent){ key, vas_val(n, false), tag };
	vt_local_set(&l, &e);
	c->cache[i - 1] = c->cache[--c->ncache];
	vas_local_count(c, 1, -1, -(int64_t)n);
	vas_lcommit(c);
	vt_local_unlock(&l);
	*at = key;
	return true;
}

/*
 * Leaf-local: n quanta from the start of the reservation, the rest of it
 * inserted behind, reserved, if the leaf has room for it inside its
 * fences (else false: the caller goes exclusive).
 */
static bool vas_local_carve(struct vas *v, struct vas_ctx *c, uint64_t n,
			    uintptr_t tag, uint64_t *at)
{
	uint64_t key = c->resv.key, len = c->resv.len;
	if (len < n)
		return false;
	struct vt_local l;
	struct vt_ent e;
	vt_local_lock(&v->addr, key, &l);
	if (!vt_local_get(&l, key, &e) ||
	    vas_val_held(e.val) != VAS_HELD_RESV || e.tag != (uintptr_t)c ||
	    vas_val_len(e.val) != len)
		LF_ASSERT(!"the reservation is where its record says (A10)");
	if (len > n) {
		struct vt_ent r =
			vas_held_ent(key + n, len - n, VAS_HELD_RESV, c);
		if (!vt_local_insert(&v->addr, &l, &r)) {
			vt_local_unlock(&l);
			return false;
		}
	}
	e = (struct vt_ent){ key, vas_val(n, false), tag };
	vt_local_set(&l, &e);
	c->resv = (struct vas_held){ key + n, len - n };
	vas_local_count(c, 1, len > n ? 0 : -1, -(int64_t)n);
	vas_lcommit(c);
	vt_local_unlock(&l);
	*at = key;
	return true;
}

/* A small allocation without the writer lock, if the caches serve it. */
static bool vas_local_alloc(struct vas *v, struct vas_ctx *c, uint64_t n,
			    uintptr_t tag, uint64_t *at)
{
	vas_local_enter(v, c);
	/* Acquire: pairs with the release store of vas_set_caching(), whose
	 * writer-lock section (and every one before it) then comes first;
	 * caching off, this side writes nothing (vas_wlock()). */
	bool ok = lf_load_u32(&v->caching, LF_ACQUIRE) != 0 &&
		  (vas_local_reuse(v, c, n, tag, at) ||
		   vas_local_carve(v, c, n, tag, at));
	vas_local_exit(c);
	return ok;
}

/* A whole small allocated range [at, at + n) becomes cached by c. */
static bool vas_local_free(struct vas *v, struct vas_ctx *c, uint64_t at,
			   uint64_t n)
{
	bool ok = false;
	vas_local_enter(v, c);
	/* Acquire: as in vas_local_alloc(). */
	if (lf_load_u32(&v->caching, LF_ACQUIRE) != 0 &&
	    c->ncache < VAS_PC_SLOTS) {
		struct vt_local l;
		struct vt_ent e;
		vt_local_lock(&v->addr, at, &l);
		if (vt_local_get(&l, at, &e) && !vas_val_free(e.val) &&
		    vas_val_len(e.val) == n) {
			e = vas_held_ent(at, n, VAS_HELD_CACHED, c);
			vt_local_set(&l, &e);
			c->cache[c->ncache++] = (struct vas_held){ at, n };
			vas_local_count(c, -1, 1, (int64_t)n);
			vas_lcommit(c);
			ok = true;
		}
		vt_local_unlock(&l);
	}
	vas_local_exit(c);
	return ok;
}

/*
 * Exclusive writer, caching on: c's reservation (what is left of it) goes
 * back, a new one of resv_q quanta is taken by best fit, and n quanta are
 * carved from its start. False if no free range is that long.
 */
static bool vas_resv_alloc(struct vas *v, struct vas_ctx *c, uint64_t n,
			   uintptr_t tag, struct vas_fit *f)
{
	if (c->resv.len != 0)
		vas_held_return(v, c->resv.key);
	uint64_t len = v->resv_q;
	struct vas_want r = { len, (uint64_t)1 << v->qshift, 0, v->nq, false };
	if (n >= len || !vas_best_fit(v, &r, f))
		return false;
	vas_carve(v, f, len, 0, tag);
	vas_put(v, f->at, n, false, tag, false);
	struct vt_ent e = vas_held_ent(f->at + n, len - n, VAS_HELD_RESV, c);
	vt_insert(&v->addr, &e);
	vas_count(&v->free_ranges, 1);
	vas_count(&v->free_q, (int64_t)(len - n));
	c->resv = (struct vas_held){ f->at + n, len - n };
	return true;
}

int vas_set_caching(struct vas *v, bool on)
{
	if (v == NULL)
		return VAS_EINVAL;
	vas_wlock(v);
	int rc = on ? VAS_OK : vas_drain_all(v, 0);
	if (rc == VAS_OK)
		/* Release: pairs with the acquire loads of the leaf-local
		 * calls (vas_local_alloc()); exclusive writers read it under
		 * the writer lock. */
		lf_store_u32(&v->caching, on ? 1u : 0u, LF_RELEASE);
	/* Release: pairs with vas_commits(), as in vas_wend(); find's pair
	 * check also sees caching move. */
	lf_fetch_add_u64(&v->commits, 1, LF_RELEASE);
	vt_commit(v);
	vas_wunlock(v);
	return rc;
}

int vas_alloc(struct vas_ctx *c, uint64_t size, uint64_t align,
	      enum vas_policy policy, uintptr_t tag, uint64_t *addr)
{
	struct vas *v = vas_of(c);
	if (v == NULL)
		return VAS_ENOTREG;
	if (size == 0 || (align & (align - 1)) || addr == NULL ||
	    (policy != VAS_FIRST_FIT && policy != VAS_BEST_FIT))
		return vas_fail(c, VAS_EINVAL);
	if (size & (((uint64_t)1 << v->qshift) - 1))
		return vas_fail(c, VAS_EALIGN);
	struct vas_want w = { size >> v->qshift, align, 0, v->nq, false };
	if (align < ((uint64_t)1 << v->qshift))
		w.align = (uint64_t)1 << v->qshift;
	if (w.n > v->nq)
		return vas_fail(c, VAS_ENOSPC);
	bool small = vas_cacheable(v, w.n, w.align);
	struct vas_fit f;
	/* Relaxed: a hint; vas_local_alloc() looks again inside its side. */
	if (small && lf_load_u32(&v->caching, LF_RELAXED) != 0 &&
	    vas_local_alloc(v, c, w.n, tag, &f.at)) {
		*addr = v->base + (f.at << v->qshift);
		return VAS_OK;
	}
	int rc = vas_wbegin(v, c, VAS_W_CARVE);
	if (rc != VAS_OK)
		return vas_fail(c, rc);
	/* Relaxed: set under the exclusion, which this writer holds. */
	bool caching = lf_load_u32(&v->caching, LF_RELAXED) != 0, ok = false;
	if (caching && small) {
		rc = vn_reserve(v, vas_wneed(v, VAS_W_CARVE_HELD));
		if (rc != VAS_OK) {
			vas_wend(v, c);
			return vas_fail(c, rc);
		}
		ok = vas_resv_alloc(v, c, w.n, tag, &f);
	}
	for (unsigned pass = 0; !ok && pass < 2; pass++) {
		/* Nothing fits outside the caches: drain them, once. */
		if (pass == 1 &&
		    (!caching ||
		     (rc = vas_drain_all(v, vas_wneed(v, VAS_W_CARVE))) !=
			     VAS_OK))
			break;
		ok = policy == VAS_FIRST_FIT ? vas_first_fit(v, &w, &f)
					     : vas_best_fit(v, &w, &f);
		if (ok)
			vas_carve(v, &f, w.n, 0, tag);
	}
	vas_wend(v, c);
	if (!ok)
		return vas_fail(c, rc != VAS_OK ? rc : VAS_ENOSPC);
	*addr = v->base + (f.at << v->qshift);
	return VAS_OK;
}

/* Check a range argument; its first quantum and length in quanta. */
static int vas_range_check(const struct vas *v, uint64_t addr, uint64_t size,
			   uint64_t *at, uint64_t *n)
{
	uint64_t qmask = ((uint64_t)1 << v->qshift) - 1;
	if (size == 0)
		return VAS_EINVAL;
	if ((addr | size) & qmask)
		return VAS_EALIGN;
	uint64_t total = v->nq << v->qshift;
	if (addr < v->base || addr - v->base >= total ||
	    size > total - (addr - v->base))
		return VAS_ERANGE;
	*at = (addr - v->base) >> v->qshift;
	*n = size >> v->qshift;
	return VAS_OK;
}

/*
 * A write on [addr, addr + size): check it, take the writer lock (with the
 * nodes reserved), and find the range holding its first quantum. Each
 * writer opens with the same few lines around it (vas_of, vas_wrange with
 * its mode, vas_fail): they stay in each writer, which then goes its own way.
 */
static int vas_wrange(struct vas *v, struct vas_ctx *c, uint64_t addr,
		      uint64_t size, uint64_t *at, uint64_t *n,
		      struct vt_ent *e, uint32_t ka, uint32_t ks)
{
	int rc = vas_range_check(v, addr, size, at, n);
	if (rc == VAS_OK)
		rc = vas_wbegin(v, c, ka, ks);
	if (rc == VAS_OK) {
		bool found = vt_get_le(&v->addr, *at, e);
		LF_ASSERT(found); /* key 0 always exists */
	}
	return rc;
}

/*
 * With caching on, the held entries overlapping [a, b) go back first (an
 * exclusive call sees through the caches), and *e is the entry holding a
 * again; need: the nodes the call reserved.
 */
static int vas_wdrain(struct vas *v, uint64_t a, uint64_t b, struct vt_ent *e,
		      uint32_t ka, uint32_t ks)
{
	/* Relaxed: set under the exclusion, which this writer holds. */
	if (lf_load_u32(&v->caching, LF_RELAXED) == 0)
		return VAS_OK;
	int rc = vas_drain_span(v, a, b, vas_wneed(v, ka, ks));
	if (!vt_get_le(&v->addr, a, e))
		LF_ASSERT(!"key 0 always exists");
	return rc;
}

int vas_alloc_at(struct vas_ctx *c, uint64_t addr, uint64_t size, uintptr_t tag)
{
	struct vas *v = vas_of(c);
	if (v == NULL)
		return VAS_ENOTREG;
	uint64_t at, n;
	struct vt_ent e;
	int rc = vas_wrange(v, c, addr, size, &at, &n, &e, VAS_W_CARVE);
	if (rc != VAS_OK)
		return vas_fail(c, rc);
	if ((rc = vas_wdrain(v, at, at + n, &e, VAS_W_CARVE)) != VAS_OK) {
		vas_wend(v, c);
		return vas_fail(c, rc);
	}
	struct vas_fit f = { e.key, vas_val_len(e.val), at };
	bool ok = vas_val_plain(e.val) && at + n <= f.s + f.len;
	if (ok)
		vas_carve(v, &f, n, 0, tag);
	vas_wend(v, c);
	return ok ? VAS_OK : vas_fail(c, VAS_EBUSY);
}

/* The hint of p, if [hint, hint + n) is aligned, in the window and free. */
static bool vas_hint_fit(struct vas *v, const struct vas_place *p,
			 const struct vas_want *w, struct vas_fit *f)
{
	struct vt_ent e;
	uint64_t h = p->hint;
	if (h == 0 || (h & (w->align - 1)) || h < v->base ||
	    ((h - v->base) >> v->qshift) < w->lo)
		return false;
	uint64_t hq = (h - v->base) >> v->qshift;
	if (hq >= w->hi || w->hi - hq < w->n)
		return false;
	if (!vt_get_le(&v->addr, hq, &e))
		LF_ASSERT(!"the entry exists");
	*f = (struct vas_fit){ e.key, vas_val_len(e.val), hq };
	return vas_val_plain(e.val) && hq + w->n <= f->s + f->len;
}

/* vas_map's arguments in quanta, or the code that rejects them. */
static int vas_map_check(const struct vas *v, const struct vas_place *p,
			 struct vas_want *w)
{
	uint64_t q = (uint64_t)1 << v->qshift, end = v->nq << v->qshift;
	if (p->size == 0 || (p->align & (p->align - 1)) ||
	    (p->flags & ~VAS_MAP_FLAGS))
		return VAS_EINVAL;
	if (p->attr & ~VAS_ATTR_MASK)
		return VAS_EATTR;
	if ((p->size | p->low | p->high) & (q - 1))
		return VAS_EALIGN;
	uint64_t lo = p->low, hi = p->high;
	if (lo == 0 && hi == 0) {
		lo = v->base;
		hi = v->base + end;
	}
	if (lo >= hi || lo < v->base || hi - v->base > end)
		return VAS_EWINDOW;
	*w = (struct vas_want){ p->size >> v->qshift,
				p->align > q ? p->align : q,
				(lo - v->base) >> v->qshift,
				(hi - v->base) >> v->qshift,
				(p->flags & VAS_MAP_TOPDOWN) != 0 };
	return VAS_OK;
}

int vas_map(struct vas_ctx *c, const struct vas_place *p, uint64_t *addr)
{
	struct vas *v = vas_of(c);
	if (v == NULL)
		return VAS_ENOTREG;
	if (p == NULL || addr == NULL)
		return vas_fail(c, VAS_EINVAL);
	struct vas_want w;
	int rc = vas_map_check(v, p, &w);
	if (rc != VAS_OK)
		return vas_fail(c, rc);
	if (w.n > w.hi - w.lo)
		return vas_fail(c, VAS_ENOSPC);
	if ((rc = vas_wbegin(v, c, VAS_W_CARVE)) != VAS_OK)
		return vas_fail(c, rc);
	struct vas_fit f;
	struct vt_ent e;
	bool ok = false;
	uint64_t hq = (p->hint - v->base) >> v->qshift;
	if (p->hint != 0 && p->hint >= v->base && hq < v->nq)
		rc = vas_wdrain(v, hq, hq + w.n < v->nq ? hq + w.n : v->nq, &e,
				VAS_W_CARVE);
	for (unsigned pass = 0; rc == VAS_OK && !ok && pass < 2; pass++) {
		/* Nothing fits outside the caches: drain them, once. */
		/* Relaxed: set under the exclusion, which this writer holds. */
		if (pass == 1 &&
		    (lf_load_u32(&v->caching, LF_RELAXED) == 0 ||
		     (rc = vas_drain_all(v, vas_wneed(v, VAS_W_CARVE))) !=
			     VAS_OK))
			break;
		ok = vas_hint_fit(v, p, &w, &f) ||
		     ((p->flags & VAS_MAP_BESTFIT) ? vas_best_fit(v, &w, &f)
						   : vas_first_fit(v, &w, &f));
	}
	if (ok)
		vas_carve(v, &f, w.n, p->attr, p->tag);
	vas_wend(v, c);
	if (!ok)
		return vas_fail(c, rc != VAS_OK ? rc : VAS_ENOSPC);
	*addr = v->base + (f.at << v->qshift);
	return VAS_OK;
}

int vas_free(struct vas_ctx *c, uint64_t addr, uint64_t size)
{
	struct vas *v = vas_of(c);
	if (v == NULL)
		return VAS_ENOTREG;
	uint64_t at, n;
	struct vt_ent e;
	/* A whole small range: cached by c, leaf-local, if caching is on. */
	/* Relaxed: a hint; vas_local_free() looks again inside its side. */
	if (lf_load_u32(&v->caching, LF_RELAXED) != 0 &&
	    vas_range_check(v, addr, size, &at, &n) == VAS_OK &&
	    n <= VAS_PC_QMAX && vas_local_free(v, c, at, n))
		return VAS_OK;
	int rc = vas_wrange(v, c, addr, size, &at, &n, &e, VAS_W_FREE);
	if (rc != VAS_OK)
		return vas_fail(c, rc);
	uint64_t s = e.key, len = vas_val_len(e.val);
	if (vas_val_free(e.val) || at + n > s + len) {
		vas_wend(v, c);
		return vas_fail(c, VAS_ENOTALLOC);
	}
	uint64_t tail = s + len - (at + n);
	uint32_t attr = vas_val_attrs(e.val);
	/* One write, committed at once: the order here is for the writer. */
	if (tail)
		vas_put_attr(v, at + n, tail, false, attr, e.tag, true);
	if (at > s) {
		vas_put(v, at, n, true, 0, true);
		vas_put_attr(v, s, at - s, false, attr, e.tag, false);
	} else {
		vas_put(v, s, n, true, 0, false);
	}
	vas_count(&v->ranges, (at > s) + (tail != 0) - 1);
	vas_coalesce(v, at, n);
	vas_wend(v, c);
	return VAS_OK;
}

/* ---- replace, unmap, protect: one write over [at, end) ---- */

/* A range of the address tree, in quanta, as the rewrites build them. */
struct vas_piece {
	uint64_t s, len;
	bool free;
	uint32_t attr;
	uintptr_t tag;
};

static struct vas_piece vas_piece_of(const struct vt_ent *e)
{
	return (struct vas_piece){ e->key, vas_val_len(e->val),
				   vas_val_free(e->val), vas_val_attrs(e->val),
				   e->tag };
}

static void vas_range_of(const struct vas *v, const struct vt_ent *e,
			 struct vas_range *r);

/*
 * Report each allocated piece of [at, end) to fn, cut to it; the quanta
 * they hold. The writer's view: nothing changes while it walks.
 */
static uint64_t vas_report(struct vas *v, uint64_t at, uint64_t end,
			   vas_piece_fn fn, void *arg)
{
	struct vt_ent e;
	uint64_t k = at, total = 0;
	if (!vt_get_le(&v->addr, at, &e))
		LF_ASSERT(!"the entry exists");
	for (;;) {
		uint64_t s = e.key, t = e.key + vas_val_len(e.val);
		if (!vas_val_free(e.val)) {
			struct vas_range r;
			vas_range_of(v, &e, &r);
			uint64_t a = s > at ? s : at, b = t < end ? t : end;
			r.start = v->base + (a << v->qshift);
			r.size = (b - a) << v->qshift;
			total += b - a;
			if (fn != NULL)
				fn(&r, arg);
		}
		k = t;
		if (k >= end || !vt_get_ge(&v->addr, k, &e))
			return total;
	}
}

/* Take every entry with key in [from, to) out of the trees. */
static void vas_delete_span(struct vas *v, uint64_t from, uint64_t to)
{
	struct vt_ent e;
	while (from < to && vt_get_ge(&v->addr, from, &e) && e.key < to) {
		uint64_t len = vas_val_len(e.val);
		LF_ASSERT(vas_val_held(e.val) == 0); /* drained first */
		if (vas_val_free(e.val))
			vas_free_del(v, e.key, len);
		else
			vas_count(&v->ranges, -1);
		vt_delete(&v->addr, e.key);
		from = e.key + len;
	}
}

static void vas_insert_piece(struct vas *v, const struct vas_piece *p)
{
	vas_put_attr(v, p->s, p->len, p->free, p->attr, p->tag, true);
	if (p->free)
		vas_free_add(v, p->s, p->len);
	else
		vas_count(&v->ranges, 1);
}

/*
 * Make [at, end) the one range mid (free, or allocated with its attr and
 * tag): what sticks out of the ranges it overlaps stays as it was, free
 * pieces merge with free neighbours. The entries of the span are taken out
 * and at most three pieces go in, all inside the write (one commit).
 */
static void vas_rewrite(struct vas *v, uint64_t at, uint64_t end,
			const struct vas_piece *mid)
{
	struct vt_ent e, x;
	struct vas_piece p[3];
	unsigned k = 0;
	if (!vt_get_le(&v->addr, at, &e))
		LF_ASSERT(!"the entry exists");
	uint64_t lo = e.key, hi;
	if (e.key < at) {
		p[k] = vas_piece_of(&e);
		p[k++].len = at - e.key;
	}
	p[k++] = *mid;
	if (!vt_get_le(&v->addr, end - 1, &e))
		LF_ASSERT(!"the entry exists");
	hi = e.key + vas_val_len(e.val);
	if (hi > end) {
		p[k] = vas_piece_of(&e);
		p[k].s = end;
		p[k++].len = hi - end;
	}
	/* Free neighbours outside the span join the free pieces at its ends. */
	if (p[0].free && vt_get_lt(&v->addr, lo, &x) && vas_val_plain(x.val)) {
		p[0].s = lo = x.key;
		p[0].len += vas_val_len(x.val);
	}
	if (p[k - 1].free && vt_get_ge(&v->addr, hi, &x) &&
	    vas_val_plain(x.val)) {
		p[k - 1].len += vas_val_len(x.val);
		hi += vas_val_len(x.val);
	}
	vas_delete_span(v, lo, hi);
	for (unsigned i = 0; i < k; i++) {
		if (i + 1 < k && p[i].free && p[i + 1].free) {
			p[i + 1].s = p[i].s;
			p[i + 1].len += p[i].len;
			continue;
		}
		vas_insert_piece(v, &p[i]);
	}
}

int vas_replace(struct vas_ctx *c, uint64_t addr, uint64_t size, uint32_t attr,
		uintptr_t tag, vas_piece_fn fn, void *arg)
{
	struct vas *v = vas_of(c);
	if (v == NULL)
		return VAS_ENOTREG;
	if (attr & ~VAS_ATTR_MASK)
		return vas_fail(c, VAS_EATTR);
	uint64_t at, n;
	struct vt_ent e;
	int rc = vas_wrange(v, c, addr, size, &at, &n, &e, VAS_W_REPLACE);
	if (rc != VAS_OK)
		return vas_fail(c, rc);
	if ((rc = vas_wdrain(v, at, at + n, &e, VAS_W_REPLACE)) != VAS_OK) {
		vas_wend(v, c);
		return vas_fail(c, rc);
	}
	vas_report(v, at, at + n, fn, arg);
	struct vas_piece mid = { at, n, false, attr, tag };
	vas_rewrite(v, at, at + n, &mid);
	vas_wend(v, c);
	return VAS_OK;
}

int vas_unmap(struct vas_ctx *c, uint64_t addr, uint64_t size, vas_piece_fn fn,
	      void *arg, uint64_t *removed)
{
	struct vas *v = vas_of(c);
	if (v == NULL)
		return VAS_ENOTREG;
	uint64_t at, n;
	struct vt_ent e;
	int rc = vas_wrange(v, c, addr, size, &at, &n, &e, VAS_W_UNMAP);
	if (rc != VAS_OK)
		return vas_fail(c, rc);
	if ((rc = vas_wdrain(v, at, at + n, &e, VAS_W_UNMAP)) != VAS_OK) {
		vas_wend(v, c);
		return vas_fail(c, rc);
	}
	uint64_t got = vas_report(v, at, at + n, fn, arg);
	if (got != 0) { /* all holes: nothing to change */
		struct vas_piece mid = { at, n, true, 0, 0 };
		vas_rewrite(v, at, at + n, &mid);
	}
	vas_wend(v, c);
	if (removed != NULL)
		*removed = got << v->qshift;
	return VAS_OK;
}

/* Split the entry holding quantum k so that one starts at k (writer). */
static void vas_split_at(struct vas *v, uint64_t k)
{
	struct vt_ent e;
	if (!vt_get_le(&v->addr, k, &e))
		LF_ASSERT(!"the entry exists");
	if (e.key == k || k >= v->nq)
		return;
	struct vas_piece p = vas_piece_of(&e);
	LF_ASSERT(!p.free); /* vas_protect() checked */
	vas_put_attr(v, k, p.s + p.len - k, false, p.attr, p.tag, true);
	vas_put_attr(v, p.s, k - p.s, false, p.attr, p.tag, false);
	vas_count(&v->ranges, 1);
}

/*
 * Merge allocated neighbours with equal attributes and tag across every
 * boundary in [at, hi] (the entry holding at - 1 ends at at: split).
 */
static void vas_merge_equal(struct vas *v, uint64_t at, uint64_t hi)
{
	struct vt_ent e, x;
	if (!vt_get_le(&v->addr, at > 0 ? at - 1 : 0, &e))
		LF_ASSERT(!"the entry exists");
	while (vt_get_ge(&v->addr, e.key + 1, &x) && x.key <= hi) {
		struct vas_piece a = vas_piece_of(&e), b = vas_piece_of(&x);
		if (a.free || b.free || a.attr != b.attr || a.tag != b.tag) {
			e = x;
			continue;
		}
		vt_delete(&v->addr, x.key);
		vas_put_attr(v, a.s, a.len + b.len, false, a.attr, a.tag,
			     false);
		vas_count(&v->ranges, -1);
		e.val = vas_val_attr(a.len + b.len, a.attr, false);
	}
}

/* Every quantum of [at, end) allocated? */
static bool vas_all_allocated(struct vas *v, uint64_t at, uint64_t end)
{
	struct vt_ent e;
	if (!vt_get_le(&v->addr, at, &e))
		LF_ASSERT(!"the entry exists");
	for (;;) {
		if (vas_val_free(e.val))
			return false;
		uint64_t t = e.key + vas_val_len(e.val);
		if (t >= end)
			return true;
		if (!vt_get_ge(&v->addr, t, &e))
			LF_ASSERT(!"the entry exists");
	}
}

/* New attributes for each entry of [at, end) (split at both ends). */
static void vas_protect_span(struct vas *v, uint64_t at, uint64_t end,
			     uint32_t mask, uint32_t bits, uintptr_t tag,
			     unsigned flags)
{
	struct vt_ent e;
	uint64_t k = at;
	while (k < end && vt_get_ge(&v->addr, k, &e) && e.key < end) {
		struct vas_piece p = vas_piece_of(&e);
		p.attr = (p.attr & ~mask) | (bits & mask);
		if (flags & VAS_PROT_TAG)
			p.tag = tag;
		vas_put_attr(v, p.s, p.len, false, p.attr, p.tag, false);
		k = p.s + p.len;
	}
}

int vas_protect(struct vas_ctx *c, uint64_t addr, uint64_t size, uint32_t mask,
		uint32_t bits, uintptr_t tag, unsigned flags, vas_piece_fn fn,
		void *arg)
{
	struct vas *v = vas_of(c);
	if (v == NULL)
		return VAS_ENOTREG;
	if (flags & ~VAS_PROT_TAG)
		return vas_fail(c, VAS_EINVAL);
	if ((mask | bits) & ~VAS_ATTR_MASK)
		return vas_fail(c, VAS_EATTR);
	uint64_t at, n;
	struct vt_ent e;
	int rc = vas_wrange(v, c, addr, size, &at, &n, &e, VAS_W_PROTECT);
	if (rc != VAS_OK)
		return vas_fail(c, rc);
	if (!vas_all_allocated(v, at, at + n)) {
		vas_wend(v, c);
		return vas_fail(c, VAS_ENOTALLOC);
	}
	vas_report(v, at, at + n, fn, arg);
	vas_split_at(v, at);
	vas_split_at(v, at + n);
	vas_protect_span(v, at, at + n, mask, bits, tag, flags);
	vas_merge_equal(v, at, at + n);
	vas_wend(v, c);
	return VAS_OK;
}

/* ---- readers ---- */

static void vas_restarts(struct vas_ctx *c, uint64_t n)
{
	if (n)
		vas_count(&c->restarts, (int64_t)n);
}

static void vas_range_of(const struct vas *v, const struct vt_ent *e,
			 struct vas_range *r)
{
	r->start = v->base + (e->key << v->qshift);
	r->size = vas_val_len(e->val) << v->qshift;
	r->allocated = !vas_val_free(e->val);
	r->tag = r->allocated ? e->tag : 0;
	r->attr = r->allocated ? vas_val_attrs(e->val) : 0; /* held: free */
}

int vas_lookup(struct vas_ctx *c, uint64_t addr, struct vas_range *out)
{
	struct vas *v = vas_of(c);
	if (v == NULL)
		return VAS_ENOTREG;
	if (out == NULL)
		return VAS_EINVAL;
	if (addr < v->base || ((addr - v->base) >> v->qshift) >= v->nq)
		return VAS_ERANGE;
	uint64_t k = (addr - v->base) >> v->qshift, restarts = 0;
	struct vt_ent e;
	lf_epoch_enter(&c->rec);
	bool found = vt_read_le(&v->addr, k, &e, &restarts);
	lf_epoch_exit(&c->rec);
	vas_restarts(c, restarts);
	if (!found || vas_val_free(e.val) || e.key + vas_val_len(e.val) <= k)
		return VAS_ENOENT;
	vas_range_of(v, &e, out);
	return VAS_OK;
}

int vas_lookup_n(struct vas_ctx *c, const uint64_t *addr, size_t n,
		 struct vas_range *out, int *rc)
{
	struct vas *v = vas_of(c);
	if (v == NULL)
		return VAS_ENOTREG;
	if (n > (size_t)INT32_MAX ||
	    (n > 0 && (addr == NULL || out == NULL || rc == NULL)))
		return VAS_EINVAL;
	uint64_t restarts = 0;
	int hits = 0;
	for (size_t i = 0; i < n;) {
		/* A group: up to VT_BATCH addresses inside the region, their
		 * lookups overlapped in one epoch section. */
		uint64_t k[VT_BATCH];
		size_t at[VT_BATCH];
		struct vt_ent e[VT_BATCH];
		bool found[VT_BATCH];
		unsigned g = 0;
		for (; i < n && g < VT_BATCH; i++) {
			if (addr[i] < v->base ||
			    ((addr[i] - v->base) >> v->qshift) >= v->nq) {
				rc[i] = VAS_ERANGE;
				continue;
			}
			k[g] = (addr[i] - v->base) >> v->qshift;
			at[g++] = i;
		}
		if (g == 0)
			continue;
		lf_epoch_enter(&c->rec);
		vt_read_le_n(&v->addr, k, g, e, found, &restarts);
		lf_epoch_exit(&c->rec);
		for (unsigned b = 0; b < g; b++) {
			size_t j = at[b];
			if (!found[b] || vas_val_free(e[b].val) ||
			    e[b].key + vas_val_len(e[b].val) <= k[b]) {
				rc[j] = VAS_ENOENT;
				continue;
			}
			vas_range_of(v, &e[b], &out[j]);
			rc[j] = VAS_OK;
			hits++;
		}
	}
	vas_restarts(c, restarts);
	return hits;
}

/*
 * Two entries that were in the tree together: the count of commits is the
 * same before the first read and after the second (acquire loads: pair
 * with the release in vas_wend(), which every writer does before it
 * unlocks a node). A reader that saw one write's node unlocked sees its
 * commit counted, so a pair read across a commit is read again.
 */
static uint64_t vas_commits(struct vas *v, bool local)
{
	uint64_t n = lf_load_u64(&v->commits, LF_ACQUIRE);
	if (!local)
		return n;
	/* With caching on, leaf-local writes count in their contexts: the
	 * sum moves if any of them committed. Acquire, the walk (pairs with
	 * the push in vas_ctx_register()) and each count (pairs with the
	 * release in vas_lcommit()). */
	for (struct vas_ctx *o = lf_load_ptr(&v->ctxs, LF_ACQUIRE); o;
	     o = o->next)
		n += lf_load_u64(&o->lcommits, LF_ACQUIRE);
	return n;
}

/*
 * The allocated range holding quantum k or the first above it (up), or
 * the one with the greatest start <= k (!up). The entry at k is free, or
 * holds k; then the answer is the first allocated entry past the run of
 * free entries from it (one, as free ranges are coalesced, but for the
 * held entries of caching beside them), all read with the commit counts
 * unchanged.
 */
static bool vas_find_q(struct vas_ctx *c, uint64_t k, bool up,
		       struct vt_ent *out, uint64_t *restarts)
{
	struct vas *v = c->vas;
	for (;; (*restarts)++) {
		/* Relaxed: vas_set_caching() moves commits too. */
		bool local = lf_load_u32(&v->caching, LF_RELAXED) != 0;
		uint64_t s0 = vas_commits(v, local);
		struct vt_ent e;
		if (!vt_read_le(&v->addr, k, &e, restarts))
			continue; /* key 0 is always there: cannot happen */
		if (!vas_val_free(e.val)) {
			*out = e;
			return true;
		}
		bool found;
		do {
			uint64_t next = e.key + vas_val_len(e.val);
			found = up ? next < v->nq && vt_read_ge(&v->addr, next,
								&e, restarts)
				   : e.key > 0 &&
						vt_read_le(&v->addr, e.key - 1,
							   &e, restarts);
		} while (found && vas_val_free(e.val));
		if (vas_commits(v, local) != s0)
			continue;
		if (!found)
			return false;
		*out = e;
		return true;
	}
}

static int vas_find_at(struct vas_ctx *c, uint64_t k, bool up,
		       struct vas_range *out)
{
	struct vas *v = c->vas;
	uint64_t restarts = 0;
	struct vt_ent e;
	lf_epoch_enter(&c->rec);
	bool found = vas_find_q(c, k, up, &e, &restarts);
	lf_epoch_exit(&c->rec);
	vas_restarts(c, restarts);
	if (!found)
		return VAS_ENOENT;
	vas_range_of(v, &e, out);
	return VAS_OK;
}

int vas_find(struct vas_ctx *c, uint64_t addr, struct vas_range *out)
{
	struct vas *v = vas_of(c);
	if (v == NULL)
		return VAS_ENOTREG;
	if (out == NULL)
		return VAS_EINVAL;
	uint64_t end = v->base + (v->nq << v->qshift);
	if (addr >= end)
		return VAS_ENOENT;
	addr = addr < v->base ? v->base : addr;
	return vas_find_at(c, (addr - v->base) >> v->qshift, true, out);
}

int vas_next(struct vas_ctx *c, const struct vas_range *r,
	     struct vas_range *out)
{
	if (r == NULL)
		return vas_of(c) == NULL ? VAS_ENOTREG : VAS_EINVAL;
	return vas_find(c, r->start + r->size, out);
}

int vas_prev(struct vas_ctx *c, uint64_t addr, struct vas_range *out)
{
	struct vas *v = vas_of(c);
	if (v == NULL)
		return VAS_ENOTREG;
	if (out == NULL)
		return VAS_EINVAL;
	if (addr <= v->base)
		return VAS_ENOENT;
	uint64_t end = v->base + (v->nq << v->qshift);
	addr = addr > end ? end : addr;
	/* Ranges starting below addr: keys up to the quantum of addr - 1. */
	return vas_find_at(c, (addr - 1 - v->base) >> v->qshift, false, out);
}

int vas_iterate(struct vas_ctx *c, uint64_t a, uint64_t b,
		bool (*fn)(const struct vas_range *r, void *arg), void *arg)
{
	struct vas *v = vas_of(c);
	if (v == NULL)
		return VAS_ENOTREG;
	if (fn == NULL)
		return VAS_EINVAL;
	uint64_t end = v->base + (v->nq << v->qshift);
	a = a < v->base ? v->base : a;
	b = b > end ? end : b;
	if (a >= b)
		return VAS_OK;
	uint64_t k = (a - v->base) >> v->qshift, restarts = 0;
	uint64_t done = a; /* reported up to here */
	struct vt_ent e;
	for (bool first = true;; first = false) {
		lf_epoch_enter(&c->rec);
		bool found = first ? vt_read_le(&v->addr, k, &e, &restarts)
				   : vt_read_ge(&v->addr, k, &e, &restarts);
		lf_epoch_exit(&c->rec);
		if (!found)
			break;
		struct vas_range r;
		vas_range_of(v, &e, &r);
		k = e.key + 1;
		/* A range made meanwhile behind what was reported: skip it. */
		if (r.start + r.size <= done)
			continue;
		if (r.start >= b || !fn(&r, arg))
			break;
		done = r.start + r.size;
	}
	vas_restarts(c, restarts);
	return VAS_OK;
}

/*
 * The longest free range, in quanta, from the size tree (writer lock
 * held): its last key, and in a class of lengths past sexact the longest
 * of the class. (The address tree's maxw only bounds it from above.)
 */
static uint64_t vas_largest_free(struct vas *v)
{
	struct vt_ent e, x;
	if (!vt_get_le(&v->size, UINT64_MAX, &e))
		return 0;
	uint64_t cls = e.key >> v->sshift, m = e.val;
	if (cls < v->sexact)
		return m;
	while (vt_get_lt(&v->size, e.key, &x) && x.key >> v->sshift == cls) {
		m = x.val > m ? x.val : m;
		e = x;
	}
	return m;
}

static void vas_check_counts(struct vas *v, uint64_t *ranges, uint64_t *frees,
			     uint64_t *freeq);

void vas_stats(struct vas *v, struct vas_stats *out)
{
	*out = (struct vas_stats){ 0 };
	/* Relaxed: a snapshot of counters. */
	out->nodes_retired = lf_load_u64(&v->retired, LF_RELAXED);
	out->commits = lf_load_u64(&v->commits, LF_RELAXED);
	vas_wlock(v);
	/* Under the exclusion: the vas's counters and the contexts' deltas
	 * of leaf-local writes, one consistent sum (A8). */
	vas_check_counts(v, &out->ranges, &out->free_ranges, &out->free_bytes);
	out->free_bytes <<= v->qshift;
	out->largest_free = vas_largest_free(v) << v->qshift;
	out->nodes = v->addr.nodes + v->size.nodes;
	out->nodes_free = v->nfree + v->nreserve;
	out->height = v->addr.height;
	vas_wunlock(v);
	/* Acquire: pairs with the release push in vas_ctx_register(). */
	for (struct vas_ctx *c = lf_load_ptr(&v->ctxs, LF_ACQUIRE); c;
	     c = c->next) {
		/* Relaxed: a snapshot of counters. */
		out->local += lf_load_u64(&c->lcommits, LF_RELAXED);
		out->restarts += lf_load_u64(&c->restarts, LF_RELAXED);
		for (unsigned i = 0; i < VAS_NERR; i++) {
			uint64_t x = lf_load_u64(&c->rejected[i], LF_RELAXED);
			if (vas_err_is_refusal(-(int)i))
				out->refused[i] += x;
			else
				out->rejected[i] += x;
		}
	}
}

/* The counters of the vas and its contexts' leaf-local deltas (A8). */
static void vas_check_counts(struct vas *v, uint64_t *ranges, uint64_t *frees,
			     uint64_t *freeq)
{
	/* Relaxed, the counters: the exclusion is held, no writer runs. The
	 * walk is acquire: pairs with the release push in vas_ctx_register().
	 */
	*ranges = lf_load_u64(&v->ranges, LF_RELAXED);
	*frees = lf_load_u64(&v->free_ranges, LF_RELAXED);
	*freeq = lf_load_u64(&v->free_q, LF_RELAXED);
	for (struct vas_ctx *o = lf_load_ptr(&v->ctxs, LF_ACQUIRE); o;
	     o = o->next) {
		*ranges += lf_load_u64(&o->d_ranges, LF_RELAXED);
		*frees += lf_load_u64(&o->d_free_ranges, LF_RELAXED);
		*freeq += lf_load_u64(&o->d_free_q, LF_RELAXED);
	}
}

/*
 * A10, A11: held entry e is recorded, once, by the registered context its
 * tag names, with its length and kind; there are none with caching off.
 */
static bool vas_check_held(struct vas *v, const struct vt_ent *e)
{
	uint32_t mark = vas_val_held(e->val), seen = 0;
	uint64_t len = vas_val_len(e->val);
	/* Relaxed: the exclusion is held. */
	if (lf_load_u32(&v->caching, LF_RELAXED) == 0 ||
	    (mark != VAS_HELD_CACHED && mark != VAS_HELD_RESV))
		return false;
	/* Acquire: pairs with the push in vas_ctx_register(). */
	struct vas_ctx *o = lf_load_ptr(&v->ctxs, LF_ACQUIRE);
	while (o != NULL && (uintptr_t)o != e->tag)
		o = o->next;
	if (o == NULL)
		return false;
	if (mark == VAS_HELD_RESV)
		return o->resv.len == len && o->resv.key == e->key;
	for (uint32_t i = 0; i < o->ncache && i < VAS_PC_SLOTS; i++)
		seen += o->cache[i].key == e->key && o->cache[i].len == len;
	return seen == 1 && len <= VAS_PC_QMAX;
}

/* A10: as many records, over all contexts, as held entries were found. */
static bool vas_check_records(struct vas *v, uint64_t held)
{
	uint64_t n = 0;
	/* Acquire: pairs with the push in vas_ctx_register(). */
	for (struct vas_ctx *o = lf_load_ptr(&v->ctxs, LF_ACQUIRE); o;
	     o = o->next) {
		if (o->ncache > VAS_PC_SLOTS)
			return false;
		n += o->ncache + (o->resv.len != 0);
	}
	return n == held;
}

/* A free entry: plain (A6, A7, A5) or held (A10, A11). */
static int vas_check_free(struct vas *v, const struct vt_ent *e,
			  bool prev_plain)
{
	if (vas_val_held(e->val) != 0)
		return vas_check_held(v, e) ? 0 : 10;
	if (prev_plain)
		return 6;
	struct vt_ent se;
	uint64_t sk = vas_size_key(v, vas_val_len(e->val), e->key);
	if (!vt_get_ge(&v->size, sk, &se) || se.key != sk ||
	    se.val != vas_val_len(e->val))
		return 7;
	return e->tag != 0 ? 5 : 0;
}

/*
 * A5-A8, A10, A11 (docs/design.md 3.5): tiling, coalesced, size tree,
 * counters, held entries; *plain the ordinary free ranges (A7).
 */
static int vas_check_ranges(struct vas *v, uint64_t *where, uint64_t *plain)
{
	struct vt_ent e;
	uint64_t next = 0, ranges = 0, frees = 0, freeq = 0, held = 0;
	bool prev_plain = false;
	*plain = 0;
	while (next < v->nq) {
		*where = next;
		if (!vt_get_ge(&v->addr, next, &e) || e.key != next ||
		    vas_val_len(e.val) == 0)
			return 5;
		bool fr = vas_val_free(e.val);
		int rc = fr ? vas_check_free(v, &e, prev_plain) : 0;
		if (rc != 0)
			return rc;
		held += vas_val_held(e.val) != 0;
		ranges += !fr;
		frees += fr;
		freeq += fr ? vas_val_len(e.val) : 0;
		prev_plain = vas_val_plain(e.val);
		*plain += prev_plain;
		next = e.key + vas_val_len(e.val);
	}
	if (next != v->nq || vt_get_ge(&v->addr, next, &e))
		return 5;
	if (!vas_check_records(v, held))
		return 10;
	uint64_t r, f, q;
	vas_check_counts(v, &r, &f, &q);
	if (ranges != r || frees != f || freeq != q)
		return 8;
	return 0;
}

int vas_check(struct vas *v, uint64_t *where)
{
	uint64_t na, ns, w = 0, plain = 0;
	vas_wlock(v);
	int rc = vt_check(&v->addr, &na, &w);
	if (rc == 0)
		rc = vt_check(&v->size, &ns, &w);
	if (rc == 0)
		rc = vas_check_ranges(v, &w, &plain);
	/* A7: as many size keys as ordinary free ranges (each found above). */
	if (rc == 0 && ns != plain)
		rc = 7;
	vas_wunlock(v);
	if (where)
		*where = w;
	return rc;
}

const char *vas_strerror(int err)
{
	static const char *const text[VAS_NERR] = {
		"ok",
		"node source out of memory",
		"no free range fits",
		"invalid argument",
		"not aligned to the quantum",
		"outside the region",
		"not allocated",
		"range busy",
		"nothing allocated there",
		"context not registered",
		"attribute bits outside the mask",
		"placement window empty or outside the region",
	};
	if (err > 0 || -err >= VAS_NERR)
		return "unknown error";
	return text[-err];
}
