/*
 * kmem.c: object caches with per-CPU magazines, a lock-free depot and a
 * slab layer (Bonwick 1994; Bonwick and Adams 2001). kmem.h gives the
 * layers; the invariants K1-K8 (checked by kmem_check() in kmem_check.c,
 * by the model test and by the torture tests) and the ordering argument
 * are in docs/design.md 4.2 and 4.3; the code cites them by number.
 */
#include "kmem.h"
#include "kmem_i.h"

static const char *const kmem_err_names[KMEM_NERR] = {
	"OK",        "ENOMEM", "EINVAL", "EFOREIGN", "EWRONG",   "EDOUBLE",
	"EINTERIOR", "EBUSY",  "ENOSPC", "ESOURCE",  "ECORRUPT",
};

const char *kmem_strerror(int err)
{
	if (err > 0 || -err >= KMEM_NERR)
		return "?";
	return kmem_err_names[-err];
}

/* Size classes of kmalloc: 8-byte steps at first, then 1.5x steps. */
static const uint16_t kmem_class_size[KMEM_KMALLOC_CLASSES] = {
	8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048,
};
static const char *const kmem_class_name[KMEM_KMALLOC_CLASSES] = {
	"kmalloc-8",    "kmalloc-16",   "kmalloc-32",   "kmalloc-48",
	"kmalloc-64",   "kmalloc-96",   "kmalloc-128",  "kmalloc-192",
	"kmalloc-256",  "kmalloc-384",  "kmalloc-512",  "kmalloc-768",
	"kmalloc-1024", "kmalloc-1536", "kmalloc-2048",
};
_Static_assert(KMEM_KMALLOC_MAX == 2048, "the class table ends at half a page");

/* ---- small helpers ---- */

/* A counter written by one context at a time: no read-modify-write. */
static inline void kmem_stat_bump(lf_atomic_u64 *s, uint64_t d)
{
	/* Relaxed: a statistic; its writer is alone (o or l). */
	lf_store_u64(s, lf_load_u64(s, LF_RELAXED) + d, LF_RELAXED);
}

static inline void kmem_stat_add(lf_atomic_u64 *s, uint64_t d)
{
	/* Relaxed: a statistic, shared by writers. */
	lf_fetch_add_u64(s, d, LF_RELAXED);
}

static int kmem_reject(lf_atomic_u64 *by, int err)
{
	kmem_stat_add(&by[-err], 1);
	return err;
}

static uintptr_t kmem_align_up(uintptr_t x, uintptr_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static void kmem_fill(void *p, uint8_t b, size_t n)
{
	volatile uint8_t *q = p; /* volatile: no memset call in the core */
	for (size_t i = 0; i < n; i++)
		q[i] = b;
}

#ifdef LF_DEBUG
static bool kmem_filled(const void *p, uint8_t b, size_t n)
{
	const uint8_t *q = p;
	for (size_t i = 0; i < n; i++)
		if (q[i] != b)
			return false;
	return true;
}
#endif

/* ---- CPU sections (see the file header) ---- */

/* The CPU lock: a drainer's, or the owner's in its slow paths. */
static void kmem_cpu_lock(struct kmem_cpu *cc)
{
	/* Acquire: pairs with the release in kmem_cpu_unlock(). */
	while (lf_xchg_u32(&cc->lock, 1, LF_ACQUIRE) != 0)
		/* Relaxed: spin on a read until it looks free. */
		while (lf_load_u32(&cc->lock, LF_RELAXED) != 0)
			lf_platform_pause();
}

static void kmem_cpu_unlock(struct kmem_cpu *cc)
{
	/* Release: pairs with the acquire in kmem_cpu_lock(). */
	lf_store_u32(&cc->lock, 0, LF_RELEASE);
}

/*
 * Aim top, lo and hi at the loaded magazine after a change of it or of its
 * count (the lock held, or the cache idle), and open the gate where there
 * is a heavy barrier: lo and hi are the gate, closed (lo = UINTPTR_MAX,
 * hi = 0: both fast tests fail) while a drainer holds the magazines and
 * for good in an instance without a heavy barrier, where every operation
 * takes the lock.
 */
static void kmem_cpu_aim(const struct kmem *k, struct kmem_cpu *cc)
{
	struct kmem_mag *m = cc->loaded;
	uintptr_t lo = (uintptr_t)&m->round[0];
	/* Relaxed: (x); published by the release stores below, or by the
	 * lock's release where the gate stays closed. */
	lf_store_uptr(&cc->top,
		      lo + lf_load_u32(&m->n, LF_RELAXED) * sizeof(m->round[0]),
		      LF_RELAXED);
	if (!k->asym) {
		kmem_gate_close(cc);
		return;
	}
	/* Release, both: pair with the acquire loads of the fast paths: the
	 * magazines as we leave them are what they see through an open
	 * gate. */
	lf_store_uptr(&cc->hi, lo + m->cap * sizeof(m->round[0]), LF_RELEASE);
	lf_store_uptr(&cc->lo, lo, LF_RELEASE);
}

/*
 * Leave a CPU section entered by the owner's fast path (kmem_alloc_obj(),
 * kmem_free_obj()): own = 1, a compiler barrier, then the gate's acquire
 * load; through an open gate the magazines are the owner's until this.
 */
static inline __attribute__((always_inline)) void
kmem_own_exit(struct kmem_cpu *cc)
{
	/* Release: our changes go to the next drainer; pairs with the
	 * acquire load of own in kmem_seize(). */
	lf_store_u32(&cc->own, 0, LF_RELEASE);
}

/* The owner's slow paths take the lock, as a drainer does: they may open
 * the gate only while no drainer can be closing it. */
static void kmem_cpu_leave(const struct kmem *k, struct kmem_cpu *cc)
{
	kmem_cpu_aim(k, cc);
	kmem_cpu_unlock(cc);
}

/*
 * Count the rounds of magazine in, now loaded, and of old, gone (or NULL),
 * in CPU cc's flows (kmem_cpu_taken()); the lock held.
 */
static void kmem_cpu_flow(struct kmem_cpu *cc, struct kmem_mag *in,
			  struct kmem_mag *old)
{
	/* Relaxed, both: the magazines are ours. */
	kmem_stat_bump(&cc->rounds_in, lf_load_u32(&in->n, LF_RELAXED));
	if (old)
		kmem_stat_bump(&cc->rounds_out,
			       lf_load_u32(&old->n, LF_RELAXED));
}

/*
 * Take CPU v's magazines as a drainer (v may be the caller's own): the
 * lock (against the owner's slow paths and other drainers), the gate
 * closed, then the heavy barrier: an owner that set own before it sees it
 * waited for, one that sets own after it sees the gate closed (the
 * asymmetric exclusion of buddy_cache.c, design.md 2.4 and 4.3, with the
 * gate for the flag the owner tests). kmem_cpu_leave() gives them back.
 */
static void kmem_seize(const struct kmem *k, struct kmem_cpu *v)
{
	kmem_cpu_lock(v);
	kmem_gate_close(v);
	if (!k->asym)
		return; /* closed for good: the owner locks too */
	lf_platform_heavy_barrier();
	/* Acquire: pairs with the release stores of own by the owner. */
	while (lf_load_u32(&v->own, LF_ACQUIRE) != 0)
		lf_platform_pause();
}

/* ---- magazines and the depot ---- */

static inline uint32_t kmem_mag_idx(const struct kmem *k,
				    const struct kmem_mag *m)
{
	return (uint32_t)(m - k->mags);
}

/* Double the rounds of the cache's new magazines, up to KMEM_MAG_MAX. */
static void kmem_mag_grow(struct kmem_cache *c)
{
	/* Relaxed: the size is a policy value; any CPU may read it late. */
	uint32_t sz = lf_load_u32(&c->mag_size, LF_RELAXED);
	if (sz < KMEM_MAG_MAX)
		lf_cas_u32(&c->mag_size, &sz,
			   sz * 2 > KMEM_MAG_MAX ? KMEM_MAG_MAX : sz * 2,
			   LF_RELAXED);
}

/* Note an exchange on stack s that began when the head was w0. */
static void kmem_depot_note(struct kmem_cache *c, const struct lf_stack *s,
			    uint64_t w0)
{
	/* Relaxed: a hint; another operation between our two reads shows as
	 * a tag more than one past w0's. */
	uint64_t w1 = lf_load_u64(&s->head, LF_RELAXED);
	if (lf_stack_word_tag(w1) == lf_stack_word_tag(w0) + 1)
		return;
	/* Relaxed: statistics and the growth policy only. */
	uint64_t n = lf_fetch_add_u64(&c->contended, 1, LF_RELAXED) + 1;
	if (n % KMEM_MAG_GROW_AT == 0)
		kmem_mag_grow(c);
}

/*
 * CPU cc exchanged a magazine with the depot for an allocation (dir 1) or
 * a free (dir -1); its lock held. KMEM_MAG_BURST of them in a row in one
 * direction (a CPU that fills or empties many objects at once, or one
 * side of a producer-consumer pair) double the cache's magazines, as
 * contention does: one exchange per magazine, twice the objects each.
 */
static void kmem_cpu_burst(struct kmem_cache *c, struct kmem_cpu *cc, int dir)
{
	if ((cc->burst > 0 && dir > 0) || (cc->burst < 0 && dir < 0))
		cc->burst += dir;
	else
		cc->burst = dir;
	if (cc->burst * dir < KMEM_MAG_BURST)
		return;
	cc->burst = 0;
	kmem_mag_grow(c);
}

/* A full magazine from the depot for CPU cc (its owner), or NULL. */
static struct kmem_mag *kmem_depot_get(struct kmem_cache *c,
				       struct kmem_cpu *cc)
{
	struct kmem *k = c->k;
	/* Relaxed: for the contention hint only. */
	uint64_t w0 = lf_load_u64(&c->full.head, LF_RELAXED);
	uint32_t i = lf_stack_pop(&c->full, k->mag_links);
	if (i == LF_STACK_NIL)
		return NULL;
	kmem_depot_note(c, &c->full, w0);
	kmem_stat_bump(&cc->depot_gets, 1);
	return &k->mags[i];
}

/* Magazine m (ours) to the depot, by CPU cc's owner. */
static void kmem_depot_put(struct kmem_cache *c, struct kmem_cpu *cc,
			   struct kmem_mag *m)
{
	struct kmem *k = c->k;
	/* Relaxed: statistics; we hold m. */
	uint32_t n = lf_load_u32(&m->n, LF_RELAXED);
	if (n == 0) {
		lf_stack_push(&c->empty, k->mag_links, kmem_mag_idx(k, m));
		return;
	}
	kmem_stat_bump(&cc->depot_puts, 1);
	/* Relaxed: for the contention hint only. */
	uint64_t w0 = lf_load_u64(&c->full.head, LF_RELAXED);
	lf_stack_push(&c->full, k->mag_links, kmem_mag_idx(k, m));
	kmem_depot_note(c, &c->full, w0);
}

/* An empty magazine of the cache's current size, or NULL. */
static struct kmem_mag *kmem_mag_get(struct kmem_cache *c)
{
	struct kmem *k = c->k;
	uint32_t i = lf_stack_pop(&c->empty, k->mag_links);
	if (i == LF_STACK_NIL)
		i = lf_stack_pop(&k->mag_pool, k->mag_links);
	if (i == LF_STACK_NIL)
		return NULL;
	struct kmem_mag *m = &k->mags[i];
	/* Relaxed: a policy value (see kmem_depot_note). */
	m->cap = lf_load_u32(&c->mag_size, LF_RELAXED);
	lf_store_u32(&m->n, 0, LF_RELAXED); /* Relaxed: we hold m. */
	return m;
}

/* ---- the slab layer ---- */

static void kmem_list_del(struct kmem_cache *c, struct kmem_slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		c->list[s->list] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

static void kmem_list_add(struct kmem_cache *c, struct kmem_slab *s,
			  enum kmem_list l)
{
	s->list = (uint8_t)l;
	s->prev = NULL;
	s->next = c->list[l];
	if (s->next)
		s->next->prev = s;
	c->list[l] = s;
}

/* Move s to the list its state calls for (K3); under the lock. */
static void kmem_relist(struct kmem_cache *c, struct kmem_slab *s)
{
	enum kmem_list l = kmem_list_for(s);
	if (l == s->list)
		return;
	if (s->list == KMEM_LIST_EMPTY)
		kmem_stat_bump(&c->nempty, (uint64_t)-1);
	if (l == KMEM_LIST_EMPTY)
		kmem_stat_bump(&c->nempty, 1);
	kmem_list_del(c, s);
	kmem_list_add(c, s, l);
}

static void kmem_slab_map(struct kmem *k, struct kmem_slab *s, uintptr_t v)
{
	uintptr_t first = ((uintptr_t)s - k->base) >> KMEM_PAGE_SHIFT;
	for (uintptr_t i = 0; i < (uintptr_t)1 << s->cache->order; i++)
		/* Release: the header written before is seen by a free that
		 * finds s here (acquire in kmem_slab_of()). */
		lf_store_uptr(&k->pagemap[first + i], v, LF_RELEASE);
}

/* Lay out a fresh object: debug patterns, constructor. */
static void kmem_obj_init(struct kmem_cache *c, void *p)
{
#ifdef LF_DEBUG
	kmem_fill((char *)p + c->size, KMEM_RZ_BYTE, c->rz_end - c->size);
	if (c->poison)
		kmem_fill(p, KMEM_POISON_BYTE, c->size);
#endif
	if (c->ctor)
		c->ctor(p, c->arg);
}

static bool kmem_source_ok(const struct kmem *k, uintptr_t a, unsigned order)
{
	uintptr_t len = KMEM_PAGE_SIZE << order;
	return (a & (KMEM_PAGE_SIZE - 1)) == 0 && a - k->base < k->size &&
	       k->size - (a - k->base) >= len;
}

/* Pages from the source: 0, KMEM_ENOMEM or KMEM_ESOURCE. */
static int kmem_source_alloc(struct kmem *k, unsigned cpu, unsigned order,
			     uintptr_t *a)
{
	int r = k->src.alloc(k->src.arg, cpu, order, a);
	if (r == KMEM_ENOMEM)
		return r;
	if (r != 0)
		return KMEM_ESOURCE;
	if (!kmem_source_ok(k, *a, order)) {
		k->src.free(k->src.arg, cpu, *a, order);
		return KMEM_ESOURCE;
	}
	kmem_stat_add(&k->pages, (uint64_t)1 << order);
	return 0;
}

/* Make a slab (outside the cache lock); NULL and *err on failure. */
static struct kmem_slab *kmem_slab_grow(struct kmem_cache *c, unsigned cpu,
					int *err)
{
	uintptr_t a;
	*err = kmem_source_alloc(c->k, cpu, c->order, &a);
	if (*err)
		return NULL;
	struct kmem_slab *s = (struct kmem_slab *)a;
	s->cache = c;
	s->prev = s->next = NULL;
	s->base = a + c->hdr;
	s->nobj = c->nobj;
	s->inuse = 0;
	s->free = 0;
	s->list = KMEM_LIST_EMPTY;
	for (uint32_t i = 0; i < c->nobj; i++) {
		/* Relaxed: published by the page map's release store. */
		lf_store_u32(&s->buf[i],
			     KMEM_BUF_SLAB |
				     (i + 1 < c->nobj ? i + 1 : KMEM_NIL16),
			     LF_RELAXED);
		kmem_obj_init(c, kmem_obj(c, s, i));
	}
	kmem_slab_map(c->k, s, kmem_pm_slab(c, s));
	kmem_stat_add(&c->grows, 1);
	return s;
}

/* Give back a slab off every list with inuse 0 (K5). */
static void kmem_slab_release(struct kmem_cache *c, unsigned cpu,
			      struct kmem_slab *s)
{
	struct kmem *k = c->k;
	LF_ASSERT(s->inuse == 0);
	kmem_slab_map(k, s, KMEM_PM_TOMB);
	if (c->dtor)
		for (uint32_t i = 0; i < s->nobj; i++)
			c->dtor(kmem_obj(c, s, i), c->arg);
	kmem_stat_add(&c->reclaims, 1);
	kmem_stat_add(&k->pages, -((uint64_t)1 << c->order));
	k->src.free(k->src.arg, cpu, (uintptr_t)s, c->order);
}

/* Add a fresh slab to the lists; under the lock. */
static void kmem_slab_add(struct kmem_cache *c, struct kmem_slab *s)
{
	kmem_list_add(c, s, KMEM_LIST_EMPTY);
	kmem_stat_bump(&c->nempty, 1);
	kmem_stat_bump(&c->nslabs, 1);
	kmem_stat_bump(&c->slab_free, s->nobj);
}

/*
 * Take up to want free objects from the slabs into the rounds out[] and
 * their bufctl words' addresses into words[] (the first round named first:
 * each object's word names its round, K2), growing if there are none; the
 * number taken, at least one unless the source failed (0: *err says why).
 */
static unsigned kmem_slab_take(struct kmem_cache *c, unsigned cpu,
			       lf_atomic_uptr *out, lf_atomic_u32 **words,
			       uint32_t first, unsigned want, int *err)
{
	unsigned n = 0;
	*err = 0;
	lf_spin_lock(&c->lock);
	while (n < want) {
		struct kmem_slab *s = c->list[KMEM_LIST_PARTIAL];
		if (!s)
			s = c->list[KMEM_LIST_EMPTY];
		if (!s) {
			/* Grow only for the first object: a slab we made may
			 * be emptied by others before we relock; then again. */
			if (n > 0)
				break;
			lf_spin_unlock(&c->lock);
			s = kmem_slab_grow(c, cpu, err);
			lf_spin_lock(&c->lock);
			if (!s)
				break;
			kmem_slab_add(c, s);
		}
		while (s->free != KMEM_NIL16 && n < want) {
			uint16_t i = s->free;
			/* Relaxed, all three: under the cache lock; the
			 * rounds and words are ours till the magazine is
			 * published (its CPU section, or the depot's push). */
			uint32_t w = lf_load_u32(&s->buf[i], LF_RELAXED);
			s->free = (uint16_t)(w & KMEM_BUF_LINK);
			lf_store_uptr(&out[n], (uintptr_t)kmem_obj(c, s, i),
				      LF_RELAXED);
			words[n] = &s->buf[i];
			/* Relaxed: a free reads nothing through the word
			 * (it refuses any word but KMEM_BUF_OUT). */
			lf_store_u32(&s->buf[i], first + n * 8, LF_RELAXED);
			n++;
			s->inuse++;
		}
		kmem_relist(c, s);
	}
	kmem_stat_bump(&c->slab_free, -(uint64_t)n);
	lf_spin_unlock(&c->lock);
	return n;
}

/* Give the chain of slabs (off every list) back to the source, outside
 * the cache lock; the pages given back. */
static size_t kmem_slab_give(struct kmem_cache *c, unsigned cpu,
			     struct kmem_slab *give)
{
	size_t pages = 0;
	while (give) {
		struct kmem_slab *s = give;
		give = s->next;
		kmem_slab_release(c, cpu, s);
		pages += (size_t)1 << c->order;
	}
	return pages;
}

/*
 * Put the n free objects of the rounds objs[] back on their slabs (their
 * bufctl words become links, K2); slabs past the cache's watermark of
 * empty slabs go back to the source, outside the lock. The pages given
 * back. claim: a free straight to the slab (n = 1, no magazine): the
 * object's word is claimed by a CAS from KMEM_BUF_OUT, as in
 * kmem_free_obj(); on failure nothing is put (0, *claim the word seen,
 * *lost set).
 */
static size_t kmem_slab_put(struct kmem_cache *c, unsigned cpu,
			    lf_atomic_uptr *objs, unsigned n, uint32_t *claim,
			    bool *lost)
{
	struct kmem *k = c->k;
	struct kmem_slab *give = NULL;
	lf_spin_lock(&c->lock);
	for (unsigned j = 0; j < n; j++) {
		/* Relaxed: the rounds are ours (held, or under seize). */
		uintptr_t a = lf_load_uptr(&objs[j], LF_RELAXED);
		struct kmem_slab *s = kmem_slab_of(k, (void *)a);
		LF_ASSERT(s && s->cache == c);
		uint32_t i = (uint32_t)kmem_div(c, a - s->base);
		if (claim) {
			/* Relaxed: as the free's claim (kmem_free_claim()). */
			*claim = KMEM_BUF_OUT;
			if (!lf_cas_u32(&s->buf[i], claim,
					KMEM_BUF_SLAB | s->free, LF_RELAXED)) {
				*lost = true;
				break;
			}
#ifdef LF_DEBUG
			if (c->poison) /* ours: no fill takes it till we
					* unlock */
				kmem_fill((void *)a, KMEM_POISON_BYTE, c->size);
#endif
		} else {
			/* Relaxed: the word is ours (its object is in our
			 * round; a free's claim fails on it). */
			lf_store_u32(&s->buf[i], KMEM_BUF_SLAB | s->free,
				     LF_RELAXED);
		}
		s->free = (uint16_t)i;
		s->inuse--;
		kmem_relist(c, s);
	}
	if (claim && *lost)
		n = 0; /* nothing put */
	kmem_stat_bump(&c->slab_free, n);
	/* Relaxed: nempty is written under the lock we hold. */
	while (lf_load_u64(&c->nempty, LF_RELAXED) > k->empty_max) {
		struct kmem_slab *s = c->list[KMEM_LIST_EMPTY];
		kmem_list_del(c, s);
		kmem_stat_bump(&c->nempty, (uint64_t)-1);
		kmem_stat_bump(&c->nslabs, (uint64_t)-1);
		kmem_stat_bump(&c->slab_free, -(uint64_t)s->nobj);
		s->next = give;
		give = s;
	}
	lf_spin_unlock(&c->lock);
	return kmem_slab_give(c, cpu, give);
}

/* Give back every empty slab of c; the pages given back. */
static size_t kmem_slab_reap(struct kmem_cache *c, unsigned cpu)
{
	struct kmem_slab *give;
	lf_spin_lock(&c->lock);
	give = c->list[KMEM_LIST_EMPTY];
	c->list[KMEM_LIST_EMPTY] = NULL;
	for (struct kmem_slab *s = give; s; s = s->next) {
		kmem_stat_bump(&c->nslabs, (uint64_t)-1);
		kmem_stat_bump(&c->slab_free, -(uint64_t)s->nobj);
	}
	lf_store_u64(&c->nempty, 0, LF_RELAXED); /* Relaxed: under the lock */
	lf_spin_unlock(&c->lock);
	return kmem_slab_give(c, cpu, give);
}

/* ---- draining ---- */

/* Empty magazine m (ours now) into the slabs; the pages given back. */
static size_t kmem_mag_empty(struct kmem_cache *c, unsigned cpu,
			     struct kmem_mag *m)
{
	/* Relaxed: we hold m (a CPU slot under its exclusion, or popped). */
	uint32_t n = lf_load_u32(&m->n, LF_RELAXED);
	if (n == 0)
		return 0;
	size_t pages = kmem_slab_put(c, cpu, m->round, n, NULL, NULL);
	lf_store_u32(&m->n, 0, LF_RELAXED); /* Relaxed: as above */
	return pages;
}

/* Empty CPU v's two magazines of cache c into the slabs; the pages given
 * back (slabs past the watermark). */
static size_t kmem_cpu_flush(struct kmem_cache *c, unsigned cpu, unsigned v)
{
	struct kmem_cpu *cc = &c->cpu[v];
	kmem_seize(c->k, cc);
	kmem_cpu_sync(cc);
	/* Relaxed: the magazines are ours under the exclusion. */
	uint32_t n = lf_load_u32(&cc->loaded->n, LF_RELAXED) +
		     lf_load_u32(&cc->prev->n, LF_RELAXED);
	if (n > 0)
		kmem_stat_add(&c->drains, 1);
	kmem_stat_bump(&cc->rounds_out, n);
	size_t pages = kmem_mag_empty(c, cpu, cc->loaded);
	pages += kmem_mag_empty(c, cpu, cc->prev);
	kmem_cpu_leave(c->k, cc);
	return pages;
}

/* Empty the depot's full magazines into the slabs; the pages given back. */
static size_t kmem_depot_flush(struct kmem_cache *c, unsigned cpu)
{
	struct kmem *k = c->k;
	size_t pages = 0;
	uint32_t i = lf_stack_pop_all(&c->full);
	while (i != LF_STACK_NIL) {
		/* Relaxed: the chain is ours since the pop_all. */
		uint32_t next = lf_load_u32(&k->mag_links[i], LF_RELAXED);
		pages += kmem_mag_empty(c, cpu, &k->mags[i]);
		lf_stack_push(&c->empty, k->mag_links, i);
		i = next;
	}
	return pages;
}

/* The depot's empty magazines back to the pool. */
static void kmem_depot_return(struct kmem_cache *c)
{
	struct kmem *k = c->k;
	uint32_t i;
	while ((i = lf_stack_pop(&c->empty, k->mag_links)) != LF_STACK_NIL)
		lf_stack_push(&k->mag_pool, k->mag_links, i);
}

/* The pages given back on the way (slabs past the watermark). */
static size_t kmem_cache_flush(struct kmem_cache *c, unsigned cpu,
			       bool all_cpus)
{
	size_t pages = 0;
	if (all_cpus)
		for (unsigned v = 0; v < c->k->ncpus; v++)
			pages += kmem_cpu_flush(c, cpu, v);
	return pages + kmem_depot_flush(c, cpu);
}

static bool kmem_cache_live(struct kmem_cache *c)
{
	/* Acquire: pairs with the release in kmem_cache_create(). */
	return lf_load_u32(&c->live, LF_ACQUIRE) != 0;
}

/* Under the instance lock. */
static size_t kmem_reclaim_locked(struct kmem *k, unsigned cpu, bool all_cpus)
{
	size_t pages = 0;
	for (unsigned i = 0; i < k->max_caches; i++) {
		struct kmem_cache *c = &k->caches[i];
		if (!kmem_cache_live(c))
			continue;
		pages += kmem_cache_flush(c, cpu, all_cpus);
		kmem_depot_return(c);
		pages += kmem_slab_reap(c, cpu);
	}
	return pages;
}

size_t kmem_reclaim(struct kmem *k, unsigned cpu, bool all_cpus)
{
	if (!k || cpu >= k->ncpus)
		return 0;
	lf_spin_lock(&k->lock);
	size_t pages = kmem_reclaim_locked(k, cpu, all_cpus);
	lf_spin_unlock(&k->lock);
	return pages;
}

void kmem_cpu_drain(struct kmem *k, unsigned cpu)
{
	if (!k || cpu >= k->ncpus)
		return;
	lf_spin_lock(&k->lock);
	for (unsigned i = 0; i < k->max_caches; i++)
		if (kmem_cache_live(&k->caches[i]))
			kmem_cpu_flush(&k->caches[i], cpu, cpu);
	lf_spin_unlock(&k->lock);
}

/*
 * Memory ran out for cache c (K7): empty c's magazines everywhere, then
 * reclaim every cache. The caller retries once.
 */
static void kmem_starved(struct kmem_cache *c, unsigned cpu)
{
	struct kmem *k = c->k;
	lf_spin_lock(&k->lock);
	kmem_cache_flush(c, cpu, true);
	kmem_reclaim_locked(k, cpu, true);
	lf_spin_unlock(&k->lock);
}

/* ---- allocation and free ---- */

/* Hand out p: check its debug patterns. */
static inline __attribute__((always_inline)) struct kmem_got
kmem_handout(struct kmem_cache *c, struct kmem_cpu *cc, void *p)
{
#ifdef LF_DEBUG
	if (c->poison && !kmem_filled(p, KMEM_POISON_BYTE, c->size)) {
		kmem_stat_add(&c->corrupt, 1); /* set aside: never reused */
		return (struct kmem_got){ NULL, KMEM_ECORRUPT };
	}
#endif
	(void)c;
	(void)cc; /* counted by the flows (kmem_cpu_taken()) */
	return (struct kmem_got){ p, 0 };
}

/*
 * Take the top round of magazine m (ours, inside the section) and mark
 * its object handed out (K2): its bufctl word KMEM_BUF_OUT.
 */
static inline __attribute__((always_inline)) void *
kmem_round_take(struct kmem_mag *m, uint32_t n)
{
	/* Relaxed, all: m is ours; snapshots read n. The word: a free's
	 * claim reads it, after the caller's hand-off of the object. */
	void *p = (void *)lf_load_uptr(&m->round[n - 1], LF_RELAXED);
	lf_store_u32(m->word[n - 1], KMEM_BUF_OUT, LF_RELAXED);
	lf_store_u32(&m->n, n - 1, LF_RELAXED);
	return p;
}

/* The allocation's slow path: prev, the depot, the slabs, K7. */
static __attribute__((noinline)) struct kmem_got
kmem_alloc_slow(struct kmem_cache *c, unsigned cpu)
{
	struct kmem *k = c->k;
	struct kmem_cpu *cc = &c->cpu[cpu];
	bool starved = false;
	void *p;
	for (;;) {
		kmem_cpu_lock(cc);
		struct kmem_mag *old = NULL, *m;
		kmem_cpu_sync(cc);
		/* Relaxed, both: our magazines, inside the section. */
		if (lf_load_u32(&cc->loaded->n, LF_RELAXED) > 0) {
			m = cc->loaded; /* the fast path found the lock held */
		} else if (lf_load_u32(&cc->prev->n, LF_RELAXED) > 0) {
			m = cc->prev;
			cc->prev = cc->loaded;
			cc->loaded = m;
		} else if ((m = kmem_depot_get(c, cc)) != NULL) {
			old = cc->prev;
			cc->prev = cc->loaded;
			cc->loaded = m;
			kmem_cpu_flow(cc, m, old);
			kmem_cpu_burst(c, cc, 1);
		}
		if (m) {
			/* Relaxed: ours, inside the section. */
			p = kmem_round_take(m, lf_load_u32(&m->n, LF_RELAXED));
			kmem_cpu_leave(k, cc);
			if (old && old != k->none)
				kmem_depot_put(c, cc, old);
			goto out;
		}
		kmem_cpu_leave(k, cc);

		/* Both magazines empty, the depot too: fill one from slabs. */
		int err;
		lf_atomic_uptr one; /* no magazine: none's round names it */
		lf_atomic_u32 *onew;
		m = kmem_mag_get(c);
		unsigned n = kmem_slab_take(
			c, cpu, m ? m->round : &one, m ? m->word : &onew,
			m ? m->first : k->none->first, m ? m->cap : 1, &err);
		if (n == 0) {
			LF_ASSERT(err !=
				  0); /* slab_take got one, or says why */
			if (m)
				kmem_depot_put(c, cc, m);
			if (starved || err != KMEM_ENOMEM) {
				kmem_stat_add(&c->failed, 1);
				return (struct kmem_got){ NULL, err };
			}
			kmem_starved(c, cpu);
			starved = true;
			continue;
		}
		if (!m) {
			p = (void *)lf_load_uptr(&one, LF_RELAXED); /* ours */
			/* Relaxed: as in kmem_round_take(). */
			lf_store_u32(onew, KMEM_BUF_OUT, LF_RELAXED);
			kmem_cpu_lock(cc);
			kmem_stat_bump(&cc->rounds_in, 1); /* and taken */
			kmem_cpu_unlock(cc);
			goto out;
		}
		kmem_stat_add(&c->fills, 1);
		lf_store_u32(&m->n, n, LF_RELAXED); /* Relaxed: ours */
		kmem_cpu_lock(cc);
		kmem_cpu_sync(cc);
		/* Only we add rounds: both are still empty. */
		old = cc->prev;
		cc->prev = cc->loaded;
		cc->loaded = m;
		kmem_cpu_flow(cc, m, old);
		kmem_cpu_burst(c, cc, 1);
		p = kmem_round_take(m, n);
		kmem_cpu_leave(k, cc);
		if (old != k->none)
			kmem_depot_put(c, cc, old);
		goto out;
	}
out:
	return kmem_handout(c, cc, p);
}

static __attribute__((noinline)) int kmem_einval(lf_atomic_u64 *by)
{
	return by ? kmem_reject(by, KMEM_EINVAL) : KMEM_EINVAL;
}

/*
 * A hit: a round of the loaded magazine, inside the section without the
 * lock; anything else (the lock held, an empty magazine) in the slow path.
 */
static inline __attribute__((always_inline)) struct kmem_got
kmem_alloc_obj(struct kmem_cache *c, unsigned cpu)
{
	struct kmem_cpu *cc = &c->cpu[cpu];
	/* Relaxed: a drainer's heavy barrier orders it against our load of
	 * the gate below (the compiler barrier keeps the order). */
	lf_store_u32(&cc->own, 1, LF_RELAXED);
	lf_compiler_barrier();
	/* Acquire: pairs with the release in kmem_cpu_aim(). Relaxed: top is
	 * ours, ordered by that acquire. */
	uintptr_t lo = lf_load_uptr(&cc->lo, LF_ACQUIRE);
	uintptr_t t = lf_load_uptr(&cc->top, LF_RELAXED);
	if (LF_UNLIKELY(t <= lo)) { /* empty, or the gate closed */
		kmem_own_exit(cc);
		return kmem_alloc_slow(c, cpu);
	}
	lf_atomic_uptr *r = (lf_atomic_uptr *)t - 1;
	/* Relaxed, all: the loaded magazine is ours inside the section; the
	 * word as in kmem_round_take() (K2). */
	void *p = (void *)lf_load_uptr(r, LF_RELAXED);
	lf_store_u32(*kmem_round_word(r), KMEM_BUF_OUT, LF_RELAXED);
	lf_store_uptr(&cc->top, (uintptr_t)r, LF_RELAXED);
	kmem_own_exit(cc);
	return kmem_handout(c, cc, p);
}

/* An argument refused: EINVAL, counted (kmem_einval()). */
static __attribute__((noinline)) struct kmem_got
kmem_got_einval(struct kmem_cache *c)
{
	return (struct kmem_got){ NULL,
				  kmem_einval(c ? c->rejected_by : NULL) };
}

/*
 * The object in registers (kmem.h): kmem_cache_alloc() stores it in its
 * caller, so that a caller whose obj is a local keeps it in a register
 * and its free does not wait on a store and a reload (docs/design.md 4.5).
 */
struct kmem_got kmem_cache_get(struct kmem_cache *c, unsigned cpu)
{
	if (LF_UNLIKELY(!c || cpu >= c->ncpus))
		return kmem_got_einval(c);
	return kmem_alloc_obj(c, cpu);
}

int kmem_cache_alloc_out(struct kmem_cache *c, unsigned cpu, void **obj)
{
	if (LF_UNLIKELY(!c || !obj || cpu >= c->ncpus))
		return kmem_einval(c ? c->rejected_by : NULL);
	return kmem_got_put(kmem_alloc_obj(c, cpu), obj);
}

/* The full classification (kmem_i.h), for the free's slow path. */
int kmem_obj_find(struct kmem *k, const void *p, struct kmem_slab **sp)
{
	uintptr_t a = (uintptr_t)p;
	if (a - k->base >= k->size)
		return KMEM_EFOREIGN;
	/* Acquire: pairs with the release in kmem_slab_map(). */
	uintptr_t e = lf_load_uptr(
		&k->pagemap[(a - k->base) >> KMEM_PAGE_SHIFT], LF_ACQUIRE);
	if (e == KMEM_PM_NONE)
		return KMEM_EFOREIGN;
	if (e == KMEM_PM_TOMB)
		return KMEM_EDOUBLE;
	if (!kmem_pm_is_slab(e))
		return (e & KMEM_PM_TAGS) == KMEM_PM_LARGE &&
				       (a & (KMEM_PAGE_SIZE - 1)) == 0
			       ? KMEM_EWRONG
			       : KMEM_EINTERIOR;
	struct kmem_slab *s = kmem_pm_slab_at(k, e);
	struct kmem_cache *c = s->cache;
	if (a < s->base)
		return KMEM_EFOREIGN; /* the slab header */
	uint64_t i = kmem_div(c, a - s->base);
	if (i >= s->nobj)
		return KMEM_EFOREIGN; /* the slab's tail */
	if (a != (uintptr_t)kmem_obj(c, s, (unsigned)i))
		return KMEM_EINTERIOR;
	*sp = s;
	return 0;
}

static int kmem_free_slow(struct kmem_cache *c, unsigned cpu, void *p,
			  lf_atomic_u32 *bc);

/* The bufctl word of object p of slab s of cache c. */
static lf_atomic_u32 *kmem_obj_buf(const struct kmem_cache *c,
				   struct kmem_slab *s, const void *p)
{
	return &s->buf[kmem_div(c, (uintptr_t)p - s->base)];
}

/*
 * A free that found p's bufctl word v other than KMEM_BUF_OUT (before its
 * claim, or by its failed CAS): p is free, on its slab's list or in the
 * round v names (EDOUBLE), or the word is corrupt. Nothing changed.
 */
static __attribute__((noinline)) int kmem_free_refuse(struct kmem_cache *c,
						      uint32_t v)
{
	if ((v & KMEM_BUF_SLAB) || (v < c->names && (v & 7) == 0))
		return kmem_reject(c->rejected_by, KMEM_EDOUBLE);
	return kmem_reject(c->rejected_by, KMEM_ECORRUPT);
}

/*
 * The free's check of p's bufctl word bc before anything changes: 0 if it
 * is KMEM_BUF_OUT, else the refusal (a free object or a corrupt word,
 * nothing changed). The hit leaves it to its claim's CAS, which sees the
 * same word (kmem_free_obj()); the slow path and debug builds make it
 * first, so that a free refused as a double free has exchanged no
 * magazine and read no red zone.
 */
static inline __attribute__((always_inline)) int
kmem_free_check(struct kmem_cache *c, lf_atomic_u32 *bc)
{
	/* Relaxed: the allocation's KMEM_BUF_OUT reaches us through the
	 * caller's hand-off of p; a later value is a claim (refused). */
	uint32_t v = lf_load_u32(bc, LF_RELAXED);
	if (LF_UNLIKELY(v != KMEM_BUF_OUT))
		return kmem_free_refuse(c, v); /* free, or corrupt */
	return 0;
}

/*
 * The free's debug checks of p (kmem_free_check(), then its red zone):
 * 0, or the refusal (KMEM_EDOUBLE or KMEM_ECORRUPT, nothing changed).
 * Nothing in other builds: the hit's claim checks the word.
 */
static inline __attribute__((always_inline)) int
kmem_free_debug(struct kmem_cache *c, const void *p, lf_atomic_u32 *bc)
{
#ifdef LF_DEBUG
	int err = kmem_free_check(c, bc);
	if (err)
		return err;
	if (!kmem_filled((const char *)p + c->size, KMEM_RZ_BYTE,
			 c->rz_end - c->size))
		return kmem_reject(c->rejected_by, KMEM_ECORRUPT);
#else
	(void)c;
	(void)p;
	(void)bc;
#endif
	return 0;
}

/*
 * Claim p for round r (its name) by a CAS of its bufctl word bc from
 * KMEM_BUF_OUT; on failure *v is the word seen. Of two frees of p that
 * race, one claims it and the other sees the round's name: the word
 * leaves KMEM_BUF_OUT only by a claim, so a claim that succeeds freed an
 * object handed out at that instant (kmem_i.h).
 */
static inline __attribute__((always_inline)) bool
kmem_free_claim(lf_atomic_u32 *bc, uint32_t *v, uint32_t r)
{
	*v = KMEM_BUF_OUT;
	/* Relaxed: the word publishes nothing (a free reads no round
	 * through it; the rounds travel with their magazine: the CPU
	 * section, the depot's release and acquire), and the value seen on
	 * failure is refused as it is. */
	return lf_cas_u32(bc, v, r, LF_RELAXED);
}

/* Poison p (debug, caches without a constructor): p claimed, in no place
 * an allocation can take it from yet. */
static inline __attribute__((always_inline)) void
kmem_free_poison(struct kmem_cache *c, void *p)
{
#ifdef LF_DEBUG
	if (c->poison)
		kmem_fill(p, KMEM_POISON_BYTE, c->size);
#else
	(void)c;
	(void)p;
#endif
}

/*
 * Free p, an object start of cache c with bufctl word bc: the magazines,
 * and the check in the claim. p is handed out exactly when its word is
 * KMEM_BUF_OUT: no read of p nor of a round. The hit puts p and bc in the
 * round at top and claims p by a CAS of the word from KMEM_BUF_OUT to that
 * round's name (kmem_free_claim()); a word other than KMEM_BUF_OUT (p
 * free: in a magazine, on its slab; or a free of p that raced this one
 * and won) makes the CAS fail, and this free is refused with nothing
 * changed (the round above top is not read by anyone). No load and
 * compare of the word before the claim (docs/design.md 4.5): the CAS
 * makes the same test, one dependent load and branch shorter.
 */
static inline __attribute__((always_inline)) int
kmem_free_obj(struct kmem_cache *c, unsigned cpu, void *p, lf_atomic_u32 *bc)
{
	struct kmem_cpu *cc = &c->cpu[cpu];
	uint32_t v;
	int err = kmem_free_debug(c, p, bc);
	if (LF_UNLIKELY(err))
		return err;
	/* Relaxed, acquire: as in kmem_alloc_obj(). */
	lf_store_u32(&cc->own, 1, LF_RELAXED);
	lf_compiler_barrier();
	uintptr_t hi = lf_load_uptr(&cc->hi, LF_ACQUIRE);
	uintptr_t t = lf_load_uptr(&cc->top, LF_RELAXED);
	if (LF_UNLIKELY(t >= hi)) { /* full, or the gate closed */
		kmem_own_exit(cc);
		return kmem_free_slow(c, cpu, p, bc);
	}
	/* Relaxed: the round at top and its word slot are ours. */
	lf_store_uptr((lf_atomic_uptr *)t, (uintptr_t)p, LF_RELAXED);
	*kmem_round_word((lf_atomic_uptr *)t) = bc;
	if (LF_UNLIKELY(!kmem_free_claim(bc, &v, (uint32_t)(t - c->mags)))) {
		kmem_own_exit(cc);
		return kmem_free_refuse(c, v);
	}
	kmem_free_poison(c, p);
	kmem_stat_bump(&cc->frees, 1);
	/* Relaxed: top is ours inside the section. */
	lf_store_uptr(&cc->top, t + sizeof(lf_atomic_uptr), LF_RELAXED);
	kmem_own_exit(cc);
	return 0;
}

/*
 * The free's slow path (p's word checked first: KMEM_BUF_OUT): the loaded
 * magazine has room after all (the fast path found the lock held), else
 * an empty prev, else a fresh magazine (prev to the depot), else the
 * slab; p claimed there as on the fast path, refused if the claim fails.
 * The mirror of kmem_alloc_slow()'s exchange, with empty and full
 * swapped.
 */
static __attribute__((noinline)) int
kmem_free_slow(struct kmem_cache *c, unsigned cpu, void *p, lf_atomic_u32 *bc)
{
	struct kmem *k = c->k;
	struct kmem_cpu *cc = &c->cpu[cpu];
	uint32_t v;
	/* A free object is refused before any magazine is exchanged. */
	int err = kmem_free_check(c, bc);
	if (err)
		return err;
	kmem_cpu_lock(cc);
	kmem_cpu_sync(cc);
	struct kmem_mag *old = NULL, *m = cc->prev;
	/* Relaxed, all n below: our magazines, inside the section. */
	if (lf_load_u32(&cc->loaded->n, LF_RELAXED) < cc->loaded->cap) {
		m = cc->loaded;
	} else if (m->cap > 0 && lf_load_u32(&m->n, LF_RELAXED) == 0) {
		cc->prev = cc->loaded;
		cc->loaded = m;
	} else if ((m = kmem_mag_get(c)) != NULL) {
		old = cc->prev;
		cc->prev = cc->loaded;
		cc->loaded = m;
		kmem_cpu_flow(cc, m, old);
		kmem_cpu_burst(c, cc, -1);
	}
	bool won = false;
	if (m) {
		/* Relaxed, the count and the round: the loaded magazine is
		 * ours under the CPU lock. */
		uint32_t n = lf_load_u32(&m->n, LF_RELAXED);
		lf_store_uptr(&m->round[n], (uintptr_t)p, LF_RELAXED);
		m->word[n] = bc;
		won = kmem_free_claim(bc, &v, m->first + n * 8);
		if (won) {
			kmem_free_poison(c, p);
			lf_store_u32(&m->n, n + 1, LF_RELAXED);
			kmem_stat_bump(&cc->frees, 1);
		}
	}
	kmem_cpu_leave(k, cc);
	if (old && old != k->none)
		kmem_depot_put(c, cc, old);
	if (!m) {
		/* No magazine: straight to the slab, claimed there. */
		lf_atomic_uptr one;
		bool lost = false;
		lf_init_uptr(&one, (uintptr_t)p); /* ours */
		kmem_slab_put(c, cpu, &one, 1, &v, &lost);
		if (!lost) {
			kmem_cpu_lock(cc);
			kmem_stat_bump(&cc->frees, 1);
			kmem_stat_bump(&cc->rounds_out, 1); /* out */
			kmem_cpu_unlock(cc);
			won = true;
		}
	}
	return won ? 0 : kmem_free_refuse(c, v);
}

/*
 * A free that failed the fast check: classify p (an object of another
 * cache is EWRONG), or, if p turns out an object of c after all (its page
 * map entry changed in between: a slab given back and remade), free it.
 */
static __attribute__((noinline)) int
kmem_cache_free_bad(struct kmem_cache *c, unsigned cpu, void *obj)
{
	struct kmem_slab *s;
	int err = kmem_obj_find(c->k, obj, &s);
	if (err == 0 && s->cache != c)
		err = KMEM_EWRONG;
	if (err)
		return kmem_reject(c->rejected_by, err);
	return kmem_free_obj(c, cpu, obj, kmem_obj_buf(c, s, obj));
}

int kmem_cache_free(struct kmem_cache *c, unsigned cpu, void *obj)
{
	if (LF_UNLIKELY(!c || cpu >= c->ncpus))
		return kmem_einval(c ? c->rejected_by : NULL);
	uintptr_t a = (uintptr_t)obj, off = a - c->base;
	if (LF_LIKELY(off < c->range)) {
		/* Acquire: pairs with the release in kmem_slab_map(). */
		uintptr_t e = lf_load_uptr(&c->pagemap[off >> KMEM_PAGE_SHIFT],
					   LF_ACQUIRE);
		lf_atomic_u32 *bc;
		if (LF_LIKELY(kmem_free_ok(c, a, e, &bc)))
			return kmem_free_obj(c, cpu, obj, bc);
	}
	return kmem_cache_free_bad(c, cpu, obj);
}

/* ---- kmalloc ---- */

static unsigned kmem_large_order(size_t size)
{
	unsigned o = 0;
	while ((KMEM_PAGE_SIZE << o) < size)
		o++;
	return o;
}

static __attribute__((noinline)) int
kmem_large_alloc(struct kmem *k, unsigned cpu, size_t size, void **p)
{
	unsigned o = kmem_large_order(size);
	uintptr_t a;
	int err = kmem_source_alloc(k, cpu, o, &a);
	if (err == KMEM_ENOMEM) {
		kmem_reclaim(k, cpu, true); /* K7 */
		err = kmem_source_alloc(k, cpu, o, &a);
	}
	if (err)
		return err;
	uintptr_t first = (a - k->base) >> KMEM_PAGE_SHIFT;
	for (uintptr_t i = 1; i < (uintptr_t)1 << o; i++)
		/* Relaxed: published by the head's release store below. */
		lf_store_uptr(&k->pagemap[first + i], KMEM_PM_TAIL, LF_RELAXED);
	/* Release: pairs with the acquire in kfree(). */
	lf_store_uptr(&k->pagemap[first], KMEM_PM_LARGE | (uintptr_t)o << 3,
		      LF_RELEASE);
	kmem_stat_add(&k->large_pages, (uint64_t)1 << o);
	kmem_stat_add(&k->large_allocs, 1);
	*p = (void *)a;
	return 0;
}

int kmalloc(struct kmem *k, unsigned cpu, size_t size, void **p)
{
	if (LF_UNLIKELY(!k || !p || cpu >= k->ncpus || size == 0 ||
			size > (KMEM_PAGE_SIZE << KMEM_LARGE_MAX_ORDER)))
		return k ? kmem_reject(k->rejected_by, KMEM_EINVAL)
			 : KMEM_EINVAL;
	if (size <= KMEM_KMALLOC_MAX)
		return kmem_got_put(
			kmem_alloc_obj(k->kmalloc[k->class_of[(size + 7) >> 3]],
				       cpu),
			p);
	return kmem_large_alloc(k, cpu, size, p);
}

static __attribute__((noinline)) int
kmem_large_free(struct kmem *k, unsigned cpu, uintptr_t a, uintptr_t e)
{
	uintptr_t first = (a - k->base) >> KMEM_PAGE_SHIFT;
	unsigned o = (unsigned)(e >> 3);
	/* Acq_rel: one of two racing frees claims the block; pairs with the
	 * release in kmem_large_alloc(). */
	if (!lf_cas_uptr(&k->pagemap[first], &e, KMEM_PM_TOMB, LF_ACQ_REL))
		return kmem_reject(k->rejected_by, KMEM_EDOUBLE);
	for (uintptr_t i = 1; i < (uintptr_t)1 << o; i++)
		/* Relaxed: the block is ours since the CAS. */
		lf_store_uptr(&k->pagemap[first + i], KMEM_PM_TOMB, LF_RELAXED);
	kmem_stat_add(&k->large_pages, -((uint64_t)1 << o));
	kmem_stat_add(&k->pages, -((uint64_t)1 << o));
	kmem_stat_add(&k->large_frees, 1);
	k->src.free(k->src.arg, cpu, a, o);
	return 0;
}

/* kfree() of a pointer that is not a kmalloc object on the fast way. */
static __attribute__((noinline)) int kmem_kfree_bad(struct kmem *k,
						    unsigned cpu, void *p)
{
	struct kmem_slab *s;
	int err = kmem_obj_find(k, p, &s);
	if (err == 0 && !s->cache->kmalloc)
		return kmem_reject(s->cache->rejected_by, KMEM_EWRONG);
	if (err)
		return kmem_reject(k->rejected_by, err);
	return kmem_free_obj(s->cache, cpu, p, kmem_obj_buf(s->cache, s, p));
}

int kfree(struct kmem *k, unsigned cpu, void *p)
{
	if (LF_UNLIKELY(!k || cpu >= k->ncpus))
		return kmem_einval(k ? k->rejected_by : NULL);
	uintptr_t a = (uintptr_t)p, off = a - k->base;
	if (LF_UNLIKELY(off >= k->size))
		return kmem_kfree_bad(k, cpu, p);
	/* Acquire: pairs with the releases in kmem_slab_map() and
	 * kmem_large_alloc(). */
	uintptr_t e =
		lf_load_uptr(&k->pagemap[off >> KMEM_PAGE_SHIFT], LF_ACQUIRE);
	if (LF_LIKELY(kmem_pm_is_slab(e))) {
		/* The key names the cache slot: no slab header read. */
		struct kmem_cache *c = &k->caches[(e >> KMEM_PM_KEY_SHIFT) - 1];
		lf_atomic_u32 *bc;
		if (LF_LIKELY(c->kmalloc && kmem_free_ok(c, a, e, &bc)))
			return kmem_free_obj(c, cpu, p, bc);
	} else if ((e & KMEM_PM_TAGS) == KMEM_PM_LARGE &&
		   (a & (KMEM_PAGE_SIZE - 1)) == 0) {
		return kmem_large_free(k, cpu, a, e);
	}
	return kmem_kfree_bad(k, cpu, p);
}

size_t kmem_ksize(struct kmem *k, const void *p)
{
	struct kmem_slab *s;
	uintptr_t a = (uintptr_t)p;
	if (!k || a - k->base >= k->size)
		return 0;
	/* Acquire: pairs with the releases of the map's writers. */
	uintptr_t e = lf_load_uptr(
		&k->pagemap[(a - k->base) >> KMEM_PAGE_SHIFT], LF_ACQUIRE);
	if ((e & KMEM_PM_TAGS) == KMEM_PM_LARGE &&
	    (a & (KMEM_PAGE_SIZE - 1)) == 0)
		return KMEM_PAGE_SIZE << (e >> 3);
	if (kmem_obj_find(k, p, &s) != 0 || !s->cache->kmalloc)
		return 0;
	return s->cache->size;
}

struct kmem_cache *kmem_cache_of(struct kmem *k, const void *p)
{
	struct kmem_slab *s;
	if (!k || kmem_obj_find(k, p, &s) != 0)
		return NULL;
	return s->cache;
}

struct kmem_cache *kmem_kmalloc_cache(struct kmem *k, unsigned i)
{
	return i < KMEM_KMALLOC_CLASSES ? k->kmalloc[i] : NULL;
}

/* ---- caches ---- */

/* Header bytes of a slab of n objects, aligned for the first object. */
static uintptr_t kmem_hdr(uintptr_t n, uintptr_t align)
{
	return kmem_align_up(sizeof(struct kmem_slab) + 4 * n,
			     align < 8 ? 8 : align);
}

/* How many objects of a stride fit in bytes behind a header aligned to a. */
static uintptr_t kmem_fit(uintptr_t bytes, uintptr_t stride, uintptr_t a)
{
	uintptr_t n = bytes / stride;
	while (n > 0 && kmem_hdr(n, a) + n * stride > bytes)
		n--;
	return n < KMEM_NIL16 ? n : KMEM_NIL16 - 1;
}

/*
 * Choose the slab order: the first with at most 1/8 wasted. The first
 * object is aligned further, to the stride's largest power-of-two factor
 * up to a cache line, when that costs no object: then no object straddles
 * more lines than it must (a 64-byte object fills one line, a 16-byte one
 * never straddles two), as the general allocators' blocks do.
 */
static bool kmem_cache_layout(struct kmem_cache *c)
{
	uintptr_t low = c->stride & -c->stride;
	uintptr_t la = low < LF_CACHELINE ? low : LF_CACHELINE;
	if (la < c->align)
		la = c->align;
	for (unsigned o = 0; o <= KMEM_SLAB_MAX_ORDER; o++) {
		uintptr_t bytes = KMEM_PAGE_SIZE << o;
		uintptr_t n = kmem_fit(bytes, c->stride, c->align);
		uintptr_t waste = bytes - n * c->stride;
		if (n == 0 || (waste > bytes / 8 && o < KMEM_SLAB_MAX_ORDER))
			continue;
		bool line = kmem_fit(bytes, c->stride, la) == n;
		c->order = o;
		c->nobj = (uint32_t)n;
		c->hdr = (uint32_t)kmem_hdr(n, line ? la : c->align);
		return true;
	}
	return false;
}

static void kmem_cache_setup(struct kmem_cache *c, size_t size, size_t align,
			     void (*ctor)(void *, void *),
			     void (*dtor)(void *, void *), void *arg)
{
	uintptr_t rsize = kmem_align_up(size < 8 ? 8 : size, 8);
	c->size = size;
	c->align = align;
	c->ctor = ctor;
	c->dtor = dtor;
	c->arg = arg;
#ifdef LF_DEBUG
	c->rz_end = (uint32_t)(rsize + KMEM_RZ_BYTES);
	c->poison = ctor == NULL;
	uintptr_t end = c->rz_end;
#else
	c->rz_end = (uint32_t)size;
	c->poison = false;
	uintptr_t end = rsize;
#endif
	c->stride = kmem_align_up(end, align);
	c->recip = kmem_recip(c->stride);
}

static int kmem_cache_init(struct kmem *k, struct kmem_cache *c,
			   const char *name, size_t size, size_t align,
			   void (*ctor)(void *, void *),
			   void (*dtor)(void *, void *), void *arg)
{
	struct kmem_cpu *cpus = c->cpu; /* kept across reuse of the slot */
	kmem_fill(c, 0, sizeof(*c));
	c->k = k;
	c->cpu = cpus;
	c->pagemap = k->pagemap;
	c->mags = (uintptr_t)k->mags;
	c->base = k->base;
	c->range = k->size;
	c->ncpus = k->ncpus;
	c->names = k->names;
	unsigned i = 0;
	for (; name && name[i] && i < KMEM_NAME_MAX - 1; i++)
		c->name[i] = name[i];
	c->name[i] = 0;
	kmem_cache_setup(c, size, align, ctor, dtor, arg);
	if (!kmem_cache_layout(c))
		return KMEM_EINVAL;
	c->pm_key = (uintptr_t)(c - k->caches + 1) << KMEM_PM_KEY_SHIFT;
	c->pm_bias = c->pm_key - c->base - c->hdr;
	c->bc_bias = c->base - c->pm_key + offsetof(struct kmem_slab, buf);
	c->span = c->nobj * c->stride;
	lf_stack_init(&c->full);
	lf_stack_init(&c->empty);
	lf_init_u32(&c->mag_size, k->mag_init);
	for (unsigned v = 0; v < k->ncpus; v++) {
		kmem_fill(&c->cpu[v], 0, sizeof(c->cpu[v]));
		c->cpu[v].loaded = c->cpu[v].prev = k->none;
		kmem_cpu_aim(k, &c->cpu[v]);
	}
	return 0;
}

int kmem_cache_create(struct kmem *k, const char *name, size_t size,
		      size_t align, void (*ctor)(void *obj, void *arg),
		      void (*dtor)(void *obj, void *arg), void *arg,
		      struct kmem_cache **cp)
{
	if (!k || !cp || size == 0 ||
	    size > KMEM_PAGE_SIZE << KMEM_SLAB_MAX_ORDER)
		return KMEM_EINVAL;
	if (align == 0)
		align = 8;
	if ((align & (align - 1)) != 0 || align > KMEM_PAGE_SIZE)
		return KMEM_EINVAL;
	int err = KMEM_ENOSPC;
	lf_spin_lock(&k->lock);
	for (unsigned i = 0; i < k->max_caches; i++) {
		struct kmem_cache *c = &k->caches[i];
		/* Relaxed: live is written under the instance lock we hold. */
		if (lf_load_u32(&c->live, LF_RELAXED))
			continue;
		err = kmem_cache_init(k, c, name, size, align, ctor, dtor, arg);
		if (err == 0) {
			/* Release: pairs with kmem_cache_live(). */
			lf_store_u32(&c->live, 1, LF_RELEASE);
			*cp = c;
		}
		break;
	}
	lf_spin_unlock(&k->lock);
	return err;
}

/* Objects handed out or set aside: from the CPUs' flows (the cache idle). */
static uint64_t kmem_cache_inuse(const struct kmem_cache *c)
{
	uint64_t a = 0, f = 0;
	for (unsigned v = 0; v < c->k->ncpus; v++) {
		a += kmem_cpu_taken(&c->cpu[v]);
		/* Relaxed: statistics. */
		f += lf_load_u64(&c->cpu[v].frees, LF_RELAXED);
	}
	return a - f;
}

int kmem_cache_destroy(struct kmem_cache *c, unsigned cpu)
{
	if (!c || cpu >= c->k->ncpus || c->kmalloc)
		return KMEM_EINVAL;
	struct kmem *k = c->k;
	lf_spin_lock(&k->lock);
	/* Relaxed: a statistic; destroy runs with the cache idle. */
	if (!kmem_cache_live(c) || kmem_cache_inuse(c) != 0 ||
	    lf_load_u64(&c->corrupt, LF_RELAXED) != 0) {
		lf_spin_unlock(&k->lock);
		return kmem_reject(c->rejected_by, KMEM_EBUSY);
	}
	kmem_cache_flush(c, cpu, true);
	kmem_depot_return(c);
	for (unsigned v = 0; v < k->ncpus; v++) {
		struct kmem_cpu *cc = &c->cpu[v];
		if (cc->loaded != k->none)
			lf_stack_push(&k->mag_pool, k->mag_links,
				      kmem_mag_idx(k, cc->loaded));
		if (cc->prev != k->none)
			lf_stack_push(&k->mag_pool, k->mag_links,
				      kmem_mag_idx(k, cc->prev));
		cc->loaded = cc->prev = k->none;
		kmem_cpu_aim(k, cc);
	}
	kmem_slab_reap(c, cpu);
	LF_ASSERT(c->list[KMEM_LIST_PARTIAL] == NULL &&
		  c->list[KMEM_LIST_FULL] == NULL);
	/* Release: the slot's reuse comes after all of the above. */
	lf_store_u32(&c->live, 0, LF_RELEASE);
	lf_spin_unlock(&k->lock);
	return 0;
}

/* ---- statistics ---- */

/*
 * Rounds in the depot's full magazines, by a walk of its stack: exact at
 * quiescence; under concurrent exchanges a snapshot that may count a
 * magazine that was just taken, bounded by the pool's size.
 */
static uint64_t kmem_depot_rounds(struct kmem_cache *c)
{
	struct kmem *k = c->k;
	uint64_t r = 0;
	/* Acquire: pairs with the release of the last push. */
	uint32_t i = lf_stack_word_top(lf_load_u64(&c->full.head, LF_ACQUIRE));
	for (uint32_t n = 0; i < k->nmags && n < k->nmags; n++) {
		/* Relaxed: a snapshot of atomics only. */
		r += lf_load_u32(&k->mags[i].n, LF_RELAXED);
		i = lf_load_u32(&k->mag_links[i], LF_RELAXED);
	}
	return r;
}

void kmem_cache_stats(struct kmem_cache *c, struct kmem_cache_stats *st)
{
	kmem_fill(st, 0, sizeof(*st));
	st->name = c->name;
	st->size = c->size;
	st->stride = c->stride;
	st->slab_pages = 1u << c->order;
	st->slab_objs = c->nobj;
	/* Relaxed, all of them: a snapshot. */
	st->mag_size = lf_load_u32(&c->mag_size, LF_RELAXED);
	uint64_t inmag = kmem_depot_rounds(c);
	for (unsigned v = 0; v < c->k->ncpus; v++) {
		struct kmem_cpu *cc = &c->cpu[v];
		st->depot_gets += lf_load_u64(&cc->depot_gets, LF_RELAXED);
		st->depot_puts += lf_load_u64(&cc->depot_puts, LF_RELAXED);
		kmem_seize(c->k, cc); /* loaded and prev are (x) */
		kmem_cpu_sync(cc);
		st->allocs += kmem_cpu_taken(cc);
		st->frees += lf_load_u64(&cc->frees, LF_RELAXED);
		inmag += lf_load_u32(&cc->loaded->n, LF_RELAXED) +
			 lf_load_u32(&cc->prev->n, LF_RELAXED);
		kmem_cpu_leave(c->k, cc);
	}
	/* Relaxed: a statistic (a snapshot, exact at quiescence). */
	st->allocs -= lf_load_u64(&c->corrupt, LF_RELAXED); /* set aside */
	st->inuse = st->allocs - st->frees;
	st->in_mags = inmag;
	st->in_slabs = lf_load_u64(&c->slab_free, LF_RELAXED);
	st->slabs = lf_load_u64(&c->nslabs, LF_RELAXED);
	st->depot_contended = lf_load_u64(&c->contended, LF_RELAXED);
	st->slab_fills = lf_load_u64(&c->fills, LF_RELAXED);
	st->grows = lf_load_u64(&c->grows, LF_RELAXED);
	st->reclaims = lf_load_u64(&c->reclaims, LF_RELAXED);
	st->drains = lf_load_u64(&c->drains, LF_RELAXED);
	st->failed = lf_load_u64(&c->failed, LF_RELAXED);
	st->corrupt = lf_load_u64(&c->corrupt, LF_RELAXED);
	for (int e = 0; e < KMEM_NERR; e++) {
		st->rejected_by[e] =
			lf_load_u64(&c->rejected_by[e], LF_RELAXED);
		st->rejected += st->rejected_by[e];
	}
}

void kmem_stats(struct kmem *k, struct kmem_stats *st)
{
	kmem_fill(st, 0, sizeof(*st));
	/* Relaxed, all of them: a snapshot. */
	st->pages = lf_load_u64(&k->pages, LF_RELAXED);
	st->large_pages = lf_load_u64(&k->large_pages, LF_RELAXED);
	st->large_allocs = lf_load_u64(&k->large_allocs, LF_RELAXED);
	st->large_frees = lf_load_u64(&k->large_frees, LF_RELAXED);
	for (unsigned i = 0; i < k->max_caches; i++)
		st->caches += lf_load_u32(&k->caches[i].live, LF_RELAXED);
	for (int e = 0; e < KMEM_NERR; e++) {
		st->rejected_by[e] =
			lf_load_u64(&k->rejected_by[e], LF_RELAXED);
		st->rejected += st->rejected_by[e];
	}
	/* Walk the pool: a snapshot (exact at quiescence). Acquire: pairs
	 * with the release of the last push; the links relaxed (bounded). */
	uint32_t i =
		lf_stack_word_top(lf_load_u64(&k->mag_pool.head, LF_ACQUIRE));
	for (uint32_t n = 0; i < k->nmags && n < k->nmags; n++) {
		st->mags_free++;
		i = lf_load_u32(&k->mag_links[i], LF_RELAXED);
	}
}

/* ---- the instance ---- */

struct kmem_layout {
	size_t caches, cpus, mags, links, pagemap, total;
};

static unsigned kmem_nmags(const struct kmem_config *cfg)
{
	return cfg->nmags ? cfg->nmags : 4 * cfg->max_caches * cfg->ncpus;
}

static bool kmem_layout(const struct kmem_config *cfg, struct kmem_layout *l)
{
	if (!cfg || cfg->ncpus == 0 || cfg->max_caches < KMEM_KMALLOC_CLASSES ||
	    cfg->max_caches > KMEM_CACHES_MAX || cfg->size > KMEM_SIZE_MAX ||
	    (cfg->base & (KMEM_PAGE_SIZE - 1)) ||
	    (cfg->size & (KMEM_PAGE_SIZE - 1)) || cfg->size == 0 ||
	    cfg->base + cfg->size < cfg->base || !cfg->source.alloc ||
	    !cfg->source.free || cfg->mag_rounds > KMEM_MAG_MAX ||
	    kmem_nmags(cfg) >= LF_STACK_NIL ||
	    ((uint64_t)kmem_nmags(cfg) + 1) * sizeof(struct kmem_mag) >=
		    KMEM_BUF_NAMES)
		return false;
	size_t off = kmem_align_up(sizeof(struct kmem), LF_CACHELINE);
	l->caches = off;
	off += kmem_align_up(cfg->max_caches * sizeof(struct kmem_cache),
			     LF_CACHELINE);
	l->cpus = off;
	off += (size_t)cfg->max_caches * cfg->ncpus * sizeof(struct kmem_cpu);
	l->mags = off;
	off += kmem_align_up(((size_t)kmem_nmags(cfg) + 1) *
				     sizeof(struct kmem_mag),
			     LF_CACHELINE);
	l->links = off;
	off += kmem_align_up((size_t)kmem_nmags(cfg) * sizeof(lf_atomic_u32),
			     LF_CACHELINE);
	l->pagemap = off;
	off += (cfg->size >> KMEM_PAGE_SHIFT) * sizeof(lf_atomic_uptr);
	l->total = off;
	return true;
}

size_t kmem_meta_size(const struct kmem_config *cfg)
{
	struct kmem_layout l;
	return kmem_layout(cfg, &l) ? l.total : 0;
}

static void kmem_init_classes(struct kmem *k)
{
	unsigned cl = 0;
	for (unsigned i = 0; i <= KMEM_KMALLOC_MAX / 8; i++) {
		while (kmem_class_size[cl] < i * 8)
			cl++;
		k->class_of[i] = (uint8_t)cl;
	}
}

int kmem_init(struct kmem **kp, void *meta, size_t meta_size,
	      const struct kmem_config *cfg)
{
	struct kmem_layout l;
	if (!kp || !meta || ((uintptr_t)meta & (LF_CACHELINE - 1)) ||
	    !kmem_layout(cfg, &l))
		return KMEM_EINVAL;
	if (meta_size < l.total)
		return KMEM_ENOSPC;
	char *base = meta;
	struct kmem *k = meta;
	kmem_fill(meta, 0, l.total);
	k->base = cfg->base;
	k->size = cfg->size;
	k->npages = cfg->size >> KMEM_PAGE_SHIFT;
	k->ncpus = cfg->ncpus;
	k->max_caches = cfg->max_caches;
	k->nmags = kmem_nmags(cfg);
	k->empty_max = cfg->empty_max;
	k->mag_init = cfg->mag_rounds ? cfg->mag_rounds : KMEM_MAG_MIN;
	k->src = cfg->source;
	/* Reclaims and drains seize every CPU's magazines, often and on many
	 * CPUs at once: asymmetric only where the heavy barrier is cheap for
	 * that (lf_platform.h; the buddy's caches choose alike). */
	k->asym = lf_platform_heavy_barrier_init() &&
		  lf_platform_heavy_barrier_cheap();
	k->caches = (struct kmem_cache *)(base + l.caches);
	k->cpus = (struct kmem_cpu *)(base + l.cpus);
	k->mags = (struct kmem_mag *)(base + l.mags);
	k->none = &k->mags[k->nmags]; /* cap 0: never takes a round */
	for (uint32_t i = 0; i <= k->nmags; i++)
		k->mags[i].first = (uint32_t)((uintptr_t)&k->mags[i].round[0] -
					      (uintptr_t)k->mags);
	k->names = (uint32_t)((k->nmags + 1) * sizeof(struct kmem_mag));
	k->mag_links = (lf_atomic_u32 *)(base + l.links);
	k->pagemap = (lf_atomic_uptr *)(base + l.pagemap);
	lf_stack_init(&k->mag_pool);
	for (uint32_t i = k->nmags; i-- > 0;)
		lf_stack_push(&k->mag_pool, k->mag_links, i);
	for (unsigned i = 0; i < k->max_caches; i++)
		k->caches[i].cpu = &k->cpus[(size_t)i * k->ncpus];
	kmem_init_classes(k);
	for (unsigned i = 0; i < KMEM_KMALLOC_CLASSES; i++) {
		int err = kmem_cache_create(k, kmem_class_name[i],
					    kmem_class_size[i], 8, NULL, NULL,
					    NULL, &k->kmalloc[i]);
		if (err)
			return err;
		k->kmalloc[i]->kmalloc = true;
	}
	*kp = k;
	return 0;
}
