/*
 * kmem_check.c: kmem_check(), every invariant of docs/design.md 4.2 (K1-K8)
 * checked over the whole instance at quiescence. For tests and the kernel's
 * torture; it walks every slab, magazine and depot stack.
 *
 * K1 (one place per free object) is checked by setting KMEM_BUF_SEEN in
 * each free object's bufctl word as it is met: meeting a seen object again
 * is an object in two places. A last pass over every object of every slab
 * checks the objects not met (handed out: K2, their word KMEM_BUF_OUT)
 * and clears the bit.
 */
#include "kmem.h"
#include "kmem_i.h"

struct kmem_walk {
	uint64_t free; /* free objects met (slabs + magazines) */
	uint64_t mags; /* magazines met */
	int bad;       /* first invariant broken, 0 if none */
};

static void kmem_check_fail(struct kmem_walk *w, int inv)
{
	if (w->bad == 0)
		w->bad = inv;
}

/* Is v (a bufctl word) the name of a round that holds p? */
static bool kmem_check_named(struct kmem *k, uint32_t v, const void *p)
{
	/* Relaxed: quiescent. */
	return v < k->names && (v & 7) == 0 &&
	       v % sizeof(struct kmem_mag) >=
		       offsetof(struct kmem_mag, round) &&
	       v % sizeof(struct kmem_mag) < offsetof(struct kmem_mag, word) &&
	       lf_load_uptr(kmem_round((uintptr_t)k->mags, v), LF_RELAXED) ==
		       (uintptr_t)p;
}

/*
 * A free object met, in round r (or on its slab's list: r = KMEM_BUF_SLAB):
 * not met before (K1), its word names that place (K2); mark it seen.
 */
static void kmem_check_free_obj(struct kmem *k, struct kmem_cache *c,
				struct kmem_slab *s, uint32_t i, uint32_t r,
				struct kmem_walk *w)
{
	void *p = kmem_obj(c, s, i);
	/* Relaxed, all: quiescent. */
	uint32_t v = lf_load_u32(&s->buf[i], LF_RELAXED);
	if (v & KMEM_BUF_SEEN) {
		kmem_check_fail(w, 1);
		return;
	}
	if (r == KMEM_BUF_SLAB ? (v & KMEM_BUF_SLAB) == 0 : v != r) {
		/* In another round as well: two places. */
		kmem_check_fail(w, kmem_check_named(k, v, p) ? 1 : 2);
		return;
	}
#ifdef LF_DEBUG
	const uint8_t *b = p;
	for (uint32_t j = (uint32_t)c->size; j < c->rz_end; j++)
		if (b[j] != KMEM_RZ_BYTE)
			kmem_check_fail(w, 2);
	for (size_t j = 0; c->poison && j < c->size; j++)
		if (b[j] != KMEM_POISON_BYTE)
			kmem_check_fail(w, 2);
#endif
	lf_store_u32(&s->buf[i], v | KMEM_BUF_SEEN, LF_RELAXED);
	w->free++;
}

/* Round r (a name) of a magazine: an object start of cache c (K1), its
 * word slot its bufctl word's address (K2), then as free. */
static void kmem_check_round(struct kmem *k, struct kmem_cache *c, uint32_t r,
			     struct kmem_walk *w)
{
	/* Relaxed: quiescent. */
	uintptr_t p =
		lf_load_uptr(kmem_round((uintptr_t)k->mags, r), LF_RELAXED);
	struct kmem_slab *s = kmem_slab_of(k, (void *)p);
	if (!s || s->cache != c || p < s->base ||
	    (p - s->base) % c->stride != 0 ||
	    (p - s->base) / c->stride >= s->nobj) {
		kmem_check_fail(w, 1);
		return;
	}
	uint32_t i = (uint32_t)((p - s->base) / c->stride);
	/* The round's word slot names its object's word (K2). */
	if (*kmem_round_word(kmem_round((uintptr_t)k->mags, r)) != &s->buf[i])
		kmem_check_fail(w, 2);
	kmem_check_free_obj(k, c, s, i, r, w);
}

static void kmem_check_mag(struct kmem *k, struct kmem_cache *c,
			   struct kmem_mag *m, struct kmem_walk *w)
{
	uint32_t n = lf_load_u32(&m->n, LF_RELAXED); /* Relaxed: quiescent */
	if (m == k->none) {
		if (n != 0 || m->cap != 0)
			kmem_check_fail(w, 6);
		return;
	}
	w->mags++;
	if (n > m->cap || m->cap > KMEM_MAG_MAX ||
	    kmem_round((uintptr_t)k->mags, m->first) != &m->round[0]) {
		kmem_check_fail(w, 6);
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		kmem_check_round(k, c, m->first + 8 * i, w);
}

/* Walk a depot or pool stack; full says its magazines hold rounds. */
static uint64_t kmem_check_stack(struct kmem *k, struct kmem_cache *c,
				 struct lf_stack *s, bool full,
				 struct kmem_walk *w)
{
	uint64_t rounds = 0;
	/* Acquire: quiescent; pairs with the last push. */
	uint32_t i = lf_stack_word_top(lf_load_u64(&s->head, LF_ACQUIRE));
	for (uint32_t seen = 0; i != LF_STACK_NIL; seen++) {
		if (i >= k->nmags || seen > k->nmags) {
			kmem_check_fail(w, 6);
			return rounds;
		}
		struct kmem_mag *m = &k->mags[i];
		uint32_t n = lf_load_u32(&m->n, LF_RELAXED);
		if (full != (n > 0))
			kmem_check_fail(w, 6);
		if (c)
			kmem_check_mag(k, c, m, w);
		else
			w->mags++;
		rounds += n;
		i = lf_load_u32(&k->mag_links[i], LF_RELAXED);
	}
	return rounds;
}

/* One slab: K3, K8, its free list (K1, K2). */
static void kmem_check_slab(struct kmem *k, struct kmem_cache *c,
			    struct kmem_slab *s, int l, struct kmem_walk *w)
{
	if (s->cache != c || s->list != (uint8_t)l || s->nobj != c->nobj)
		kmem_check_fail(w, 3);
	uint32_t nfree = 0;
	/* Relaxed: quiescent (the links, under the lock otherwise). */
	for (uint32_t i = s->free; i != KMEM_NIL16;
	     i = lf_load_u32(&s->buf[i], LF_RELAXED) & KMEM_BUF_LINK) {
		if (i >= s->nobj || nfree >= s->nobj) {
			kmem_check_fail(w, 1);
			return;
		}
		kmem_check_free_obj(k, c, s, i, KMEM_BUF_SLAB, w);
		nfree++;
	}
	if (s->inuse != s->nobj - nfree ||
	    kmem_list_for(s) != (enum kmem_list)l)
		kmem_check_fail(w, 3);
	uintptr_t first = ((uintptr_t)s - k->base) >> KMEM_PAGE_SHIFT;
	for (uintptr_t i = 0; i < (uintptr_t)1 << c->order; i++)
		if (lf_load_uptr(&k->pagemap[first + i], LF_RELAXED) !=
		    kmem_pm_slab(c, s))
			kmem_check_fail(w, 8);
}

/*
 * Every object of c's slabs: one not met is handed out (or set aside),
 * its word KMEM_BUF_OUT (K2); clear the bits set by the walk.
 */
static void kmem_check_restore(struct kmem_cache *c, struct kmem_walk *w)
{
	for (int l = 0; l < KMEM_LISTS; l++)
		for (struct kmem_slab *s = c->list[l]; s; s = s->next)
			for (uint32_t i = 0; i < s->nobj; i++) {
				/* Relaxed, all: quiescent. */
				uint32_t v =
					lf_load_u32(&s->buf[i], LF_RELAXED);
				if (v & KMEM_BUF_SEEN) {
					lf_store_u32(&s->buf[i],
						     v & ~KMEM_BUF_SEEN,
						     LF_RELAXED);
					continue;
				}
				if (v != KMEM_BUF_OUT)
					kmem_check_fail(w, 2);
			}
}

static void kmem_check_cache(struct kmem *k, struct kmem_cache *c,
			     struct kmem_walk *w)
{
	uint64_t free0 = w->free, nslabs = 0, slabfree = 0;
	for (int l = 0; l < KMEM_LISTS; l++)
		for (struct kmem_slab *s = c->list[l]; s; s = s->next) {
			uint64_t f = w->free;
			kmem_check_slab(k, c, s, l, w);
			slabfree += w->free - f;
			nslabs++;
		}
	for (unsigned v = 0; v < k->ncpus; v++) {
		struct kmem_cpu *cc = &c->cpu[v];
		/* Relaxed, all: quiescent. */
		uintptr_t r0 = (uintptr_t)&cc->loaded->round[0];
		uintptr_t rc = r0 + cc->loaded->cap * sizeof(uintptr_t);
		uintptr_t lo = lf_load_uptr(&cc->lo, LF_RELAXED);
		uintptr_t hi = lf_load_uptr(&cc->hi, LF_RELAXED);
		uintptr_t t = lf_load_uptr(&cc->top, LF_RELAXED);
		bool open = lo == r0 && hi == rc;
		if ((!open && (lo != UINTPTR_MAX || hi != 0 || k->asym)) ||
		    t < r0 || t > rc || (t - r0) % sizeof(uintptr_t) != 0)
			kmem_check_fail(w, 6);
		else
			kmem_cpu_sync(cc);
		kmem_check_mag(k, c, c->cpu[v].loaded, w);
		kmem_check_mag(k, c, c->cpu[v].prev, w);
	}
	kmem_check_stack(k, c, &c->full, true, w);
	kmem_check_stack(k, c, &c->empty, false, w);
	/* Relaxed, all: quiescent. */
	if (nslabs != lf_load_u64(&c->nslabs, LF_RELAXED) ||
	    slabfree != lf_load_u64(&c->slab_free, LF_RELAXED))
		kmem_check_fail(w, 4);
	uint64_t a = 0, f = 0;
	for (unsigned v = 0; v < k->ncpus; v++) {
		a += kmem_cpu_taken(&c->cpu[v]); /* corrupt ones too */
		f += lf_load_u64(&c->cpu[v].frees, LF_RELAXED);
	}
	if (nslabs * c->nobj != (a - f) + (w->free - free0))
		kmem_check_fail(w, 4);
	kmem_check_restore(c, w);
}

int kmem_check(struct kmem *k)
{
	struct kmem_walk w = { 0, 0, 0 };
	lf_spin_lock(&k->lock);
	for (unsigned i = 0; i < k->max_caches; i++)
		if (lf_load_u32(&k->caches[i].live, LF_ACQUIRE))
			kmem_check_cache(k, &k->caches[i], &w);
	kmem_check_stack(k, NULL, &k->mag_pool, false, &w);
	if (w.mags != k->nmags)
		kmem_check_fail(&w, 6);
	/* K8 for large blocks, and pages held = slabs + large. */
	uint64_t large = 0, slabpages = 0;
	for (uintptr_t p = 0; p < k->npages; p++) {
		uintptr_t e = lf_load_uptr(&k->pagemap[p], LF_RELAXED);
		if ((e & KMEM_PM_TAGS) == KMEM_PM_LARGE) {
			uintptr_t n = (uintptr_t)1 << (e >> 3);
			large += n;
			for (uintptr_t j = 1; j < n; j++)
				if (p + j >= k->npages ||
				    lf_load_uptr(&k->pagemap[p + j],
						 LF_RELAXED) != KMEM_PM_TAIL)
					kmem_check_fail(&w, 8);
		} else if (kmem_pm_is_slab(e)) {
			slabpages++;
		}
	}
	if (large != lf_load_u64(&k->large_pages, LF_RELAXED) ||
	    large + slabpages != lf_load_u64(&k->pages, LF_RELAXED))
		kmem_check_fail(&w, 8);
	lf_spin_unlock(&k->lock);
	return w.bad;
}
