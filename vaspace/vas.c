/*
 * vas.c: the virtual address range allocator on the trees of vas_tree.c.
 *
 * The address tree holds every range of the region, keyed by its start in
 * quanta, its value the length in quanta and whether it is free (vas_val);
 * allocated ranges carry the user's tag. Its inner nodes keep the largest
 * free length below each child, so first fit is a descent (O(log n) for an
 * alignment up to the quantum; a larger alignment may skip candidates that
 * are long enough but cannot be aligned, O(log n) each). The size tree
 * holds each free range once more, keyed by length << 32 | start, so best
 * fit is one lower-bound search (again O(log n) per candidate skipped for
 * alignment).
 *
 * Writers take the writer lock, reserve every node the call may need (so a
 * failing node source fails the call before anything changed: the vas is
 * exactly as before), then change the trees in an order that keeps every
 * allocated range visible to lookups at every moment: the pieces that stay
 * allocated are inserted before the entry they came from shrinks, and an
 * allocation appears with the one insert or update that creates its entry
 * (its linearization point); free ranges may overlap for a moment, which a
 * lookup of allocated ranges never sees.
 */
#include "vas_i.h"

#define VAS_SIZE_KEY(len, start) ((len) << 32 | (start))

/* The writer lock (lf_spin.h: acquire pairs with the last writer's release). */
static void vas_wlock(struct vas *v)
{
	lf_spin_lock(&v->wlock);
}

static void vas_wunlock(struct vas *v)
{
	lf_spin_unlock(&v->wlock);
}

/* Statistics words: written by the writer alone, read by vas_stats(). */
static void vas_count(lf_atomic_u64 *a, int64_t d)
{
	/* Relaxed: one writer (the writer lock); stats read a snapshot. */
	lf_store_u64(a, lf_load_u64(a, LF_RELAXED) + (uint64_t)d, LF_RELAXED);
}

/* The same for a context's counters (its owner writes them). */
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
	struct vt_ent e = { VAS_SIZE_KEY(len, s), 0, 0 };
	vt_insert(&v->size, &e);
	vas_count(&v->free_ranges, 1);
	vas_count(&v->free_q, (int64_t)len);
}

static void vas_free_del(struct vas *v, uint64_t s, uint64_t len)
{
	vt_delete(&v->size, VAS_SIZE_KEY(len, s));
	vas_count(&v->free_ranges, -1);
	vas_count(&v->free_q, -(int64_t)len);
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
	if (base + size < base || size / quantum >= ((uint64_t)1 << 32))
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
	*v = (struct vas){ .base = base, .src = *src, .high_water = high_water };
	v->qshift = vas_log2(quantum);
	v->nq = size >> v->qshift;
	v->sshift = 32;
	lf_spin_init(&v->wlock);
	lf_init_ptr(&v->ctxs, NULL);
	lf_epoch_domain_init(&v->epoch, 64);
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
	/* Relaxed: the CAS re-checks it. */
	struct vas_ctx *head = lf_load_ptr(&v->ctxs, LF_RELAXED);
	do
		c->next = head;
	/* Release: c's fields, for vas_stats()'s acquire walk. */
	while (!lf_cas_ptr(&v->ctxs, (void **)&head, c, LF_RELEASE));
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

/* Take the writer lock and set aside the nodes a call may need. */
static int vas_wbegin(struct vas *v, struct vas_ctx *c)
{
	vas_wlock(v);
	v->wctx = c;
	uint32_t need = 2 * vt_insert_nodes(&v->addr) +
			2 * vt_insert_nodes(&v->size);
	int rc = vn_reserve(v, need);
	if (rc != VAS_OK)
		vas_wunlock(v);
	return rc;
}

static void vas_wend(struct vas *v, struct vas_ctx *c)
{
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

static bool vas_fits(const struct vas *v, struct vas_fit *f, uint64_t n,
		     uint64_t align)
{
	f->at = vas_align_q(v, f->s, align);
	return f->at >= f->s && f->at + n <= f->s + f->len;
}

/* The free range at the lowest address where the block fits. */
static bool vas_first_fit(struct vas *v, uint64_t n, uint64_t align,
			  struct vas_fit *f)
{
	struct vt_ent e;
	uint64_t from = 0;
	while (vt_first_weight(&v->addr, from, n, &e)) {
		f->s = e.key;
		f->len = vas_val_len(e.val);
		if (vas_fits(v, f, n, align))
			return true;
		from = e.key + 1; /* too short once aligned: the next one */
	}
	return false;
}

/* The smallest free range where the block fits (lowest start on ties). */
static bool vas_best_fit(struct vas *v, uint64_t n, uint64_t align,
			 struct vas_fit *f)
{
	struct vt_ent e;
	uint64_t key = VAS_SIZE_KEY(n, (uint64_t)0);
	while (vt_get_ge(&v->size, key, &e)) {
		f->len = e.key >> 32;
		f->s = e.key & 0xffffffffu;
		if (vas_fits(v, f, n, align))
			return true;
		key = e.key + 1;
	}
	return false;
}

/* Allocate [at, at + n) out of free range f, tagged. */
static void vas_carve(struct vas *v, const struct vas_fit *f, uint64_t n,
		      uintptr_t tag)
{
	uint64_t rest = f->s + f->len - (f->at + n);
	vas_free_del(v, f->s, f->len);
	if (rest) {
		vas_put(v, f->at + n, rest, true, 0, true);
		vas_free_add(v, f->at + n, rest);
	}
	if (f->at > f->s) {
		vas_put(v, f->at, n, false, tag, true); /* appears here */
		vas_put(v, f->s, f->at - f->s, true, 0, false);
		vas_free_add(v, f->s, f->at - f->s);
	} else {
		vas_put(v, f->s, n, false, tag, false); /* appears here */
	}
	vas_count(&v->ranges, 1);
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
	uint64_t n = size >> v->qshift;
	if (align < ((uint64_t)1 << v->qshift))
		align = (uint64_t)1 << v->qshift;
	if (n > v->nq)
		return vas_fail(c, VAS_ENOSPC);
	int rc = vas_wbegin(v, c);
	if (rc != VAS_OK)
		return vas_fail(c, rc);
	struct vas_fit f;
	bool ok = policy == VAS_FIRST_FIT ? vas_first_fit(v, n, align, &f)
					  : vas_best_fit(v, n, align, &f);
	if (ok)
		vas_carve(v, &f, n, tag);
	vas_wend(v, c);
	if (!ok)
		return vas_fail(c, VAS_ENOSPC);
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
 * nodes reserved), and find the range holding its first quantum.
 */
static int vas_wrange(struct vas *v, struct vas_ctx *c, uint64_t addr,
		      uint64_t size, uint64_t *at, uint64_t *n,
		      struct vt_ent *e)
{
	int rc = vas_range_check(v, addr, size, at, n);
	if (rc == VAS_OK)
		rc = vas_wbegin(v, c);
	if (rc == VAS_OK) {
		bool found = vt_get_le(&v->addr, *at, e);
		LF_ASSERT(found); /* key 0 always exists */
	}
	return rc;
}

int vas_alloc_at(struct vas_ctx *c, uint64_t addr, uint64_t size,
		 uintptr_t tag)
{
	struct vas *v = vas_of(c);
	if (v == NULL)
		return VAS_ENOTREG;
	uint64_t at, n;
	struct vt_ent e;
	int rc = vas_wrange(v, c, addr, size, &at, &n, &e);
	if (rc != VAS_OK)
		return vas_fail(c, rc);
	struct vas_fit f = { e.key, vas_val_len(e.val), at };
	bool ok = vas_val_free(e.val) && at + n <= f.s + f.len;
	if (ok)
		vas_carve(v, &f, n, tag);
	vas_wend(v, c);
	return ok ? VAS_OK : vas_fail(c, VAS_EBUSY);
}

/* Free range [s, s + len) at key s: merge with free neighbours, index it. */
static void vas_coalesce(struct vas *v, uint64_t s, uint64_t len)
{
	struct vt_ent e;
	if (vt_get_ge(&v->addr, s + 1, &e) && vas_val_free(e.val)) {
		uint64_t nl = vas_val_len(e.val);
		vas_free_del(v, e.key, nl);
		vas_put(v, s, len + nl, true, 0, false);
		vt_delete(&v->addr, e.key);
		len += nl;
	}
	if (vt_get_lt(&v->addr, s, &e) && vas_val_free(e.val)) {
		uint64_t pl = vas_val_len(e.val);
		vas_free_del(v, e.key, pl);
		vas_put(v, e.key, pl + len, true, 0, false);
		vt_delete(&v->addr, s);
		s = e.key;
		len += pl;
	}
	vas_free_add(v, s, len);
}

int vas_free(struct vas_ctx *c, uint64_t addr, uint64_t size)
{
	struct vas *v = vas_of(c);
	if (v == NULL)
		return VAS_ENOTREG;
	uint64_t at, n;
	struct vt_ent e;
	int rc = vas_wrange(v, c, addr, size, &at, &n, &e);
	if (rc != VAS_OK)
		return vas_fail(c, rc);
	uint64_t s = e.key, len = vas_val_len(e.val);
	if (vas_val_free(e.val) || at + n > s + len) {
		vas_wend(v, c);
		return vas_fail(c, VAS_ENOTALLOC);
	}
	uint64_t tail = s + len - (at + n);
	/* What stays allocated is in the tree before the free part shows. */
	if (tail)
		vas_put(v, at + n, tail, false, e.tag, true);
	if (at > s) {
		vas_put(v, at, n, true, 0, true); /* disappears here */
		vas_put(v, s, at - s, false, e.tag, false);
	} else {
		vas_put(v, s, n, true, 0, false); /* disappears here */
	}
	vas_count(&v->ranges, (at > s) + (tail != 0) - 1);
	vas_coalesce(v, at, n);
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

void vas_stats(struct vas *v, struct vas_stats *out)
{
	*out = (struct vas_stats){ 0 };
	/* Relaxed: a snapshot of counters. */
	out->ranges = lf_load_u64(&v->ranges, LF_RELAXED);
	out->free_ranges = lf_load_u64(&v->free_ranges, LF_RELAXED);
	out->free_bytes = lf_load_u64(&v->free_q, LF_RELAXED) << v->qshift;
	out->nodes_retired = lf_load_u64(&v->retired, LF_RELAXED);
	vas_wlock(v);
	out->largest_free = vt_max_weight(&v->addr) << v->qshift;
	out->nodes = v->addr.nodes + v->size.nodes;
	out->nodes_free = v->nfree + v->nreserve;
	out->height = v->addr.height;
	vas_wunlock(v);
	/* Acquire: pairs with the release push in vas_ctx_register(). */
	for (struct vas_ctx *c = lf_load_ptr(&v->ctxs, LF_ACQUIRE); c;
	     c = c->next) {
		out->restarts += lf_load_u64(&c->restarts, LF_RELAXED);
		for (unsigned i = 0; i < VAS_NERR; i++)
			out->rejected[i] +=
				lf_load_u64(&c->rejected[i], LF_RELAXED);
	}
}

/*
 * A5 the ranges tile the region: keys from 0, each the end of the one
 * before, the last ending at the region's end, no empty one; A6 no two
 * free ranges side by side; A7 the size tree holds exactly the free
 * ranges; A8 the counters match.
 */
static int vas_check_ranges(struct vas *v, uint64_t *where)
{
	struct vt_ent e;
	uint64_t next = 0, ranges = 0, frees = 0, freeq = 0;
	bool prev_free = false;
	while (next < v->nq) {
		*where = next;
		if (!vt_get_ge(&v->addr, next, &e) || e.key != next ||
		    vas_val_len(e.val) == 0)
			return 5;
		bool fr = vas_val_free(e.val);
		if (fr && prev_free)
			return 6;
		struct vt_ent se;
		uint64_t sk = VAS_SIZE_KEY(vas_val_len(e.val), e.key);
		if (fr && (!vt_get_ge(&v->size, sk, &se) || se.key != sk))
			return 7;
		ranges += !fr;
		frees += fr;
		freeq += fr ? vas_val_len(e.val) : 0;
		prev_free = fr;
		next = e.key + vas_val_len(e.val);
	}
	if (next != v->nq || vt_get_ge(&v->addr, next, &e))
		return 5;
	if (ranges != lf_load_u64(&v->ranges, LF_RELAXED) ||
	    frees != lf_load_u64(&v->free_ranges, LF_RELAXED) ||
	    freeq != lf_load_u64(&v->free_q, LF_RELAXED))
		return 8;
	return 0;
}

int vas_check(struct vas *v, uint64_t *where)
{
	uint64_t na, ns, w = 0;
	vas_wlock(v);
	int rc = vt_check(&v->addr, &na, &w);
	if (rc == 0)
		rc = vt_check(&v->size, &ns, &w);
	if (rc == 0)
		rc = vas_check_ranges(v, &w);
	/* A7: as many size keys as free ranges (each one found above). */
	if (rc == 0 && ns != lf_load_u64(&v->free_ranges, LF_RELAXED))
		rc = 7;
	vas_wunlock(v);
	if (where)
		*where = w;
	return rc;
}

const char *vas_strerror(int err)
{
	static const char *const text[VAS_NERR] = {
		"ok", "node source out of memory", "no free range fits",
		"invalid argument", "not aligned to the quantum",
		"outside the region", "not allocated", "range busy",
		"nothing allocated there", "context not registered",
	};
	if (err > 0 || -err >= VAS_NERR)
		return "unknown error";
	return text[-err];
}
