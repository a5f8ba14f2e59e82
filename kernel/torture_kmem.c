/*
 * torture_kmem.c: kmem (kmem/) under every CPU at once.
 *
 * Each CPU allocates objects of mixed sizes: from three caches (24 bytes
 * with a constructor, 200 and 1000 bytes), from kmalloc (1 byte to half a
 * page) and now and then a large kmalloc block (2-16 KiB, pages of the
 * buddy). It writes its owner pattern into every object (tag ^ word
 * index, the tag naming the CPU and a sequence number) and checks it
 * before every free; it frees objects itself, or hands them to another
 * CPU's mailbox (a remote free: the receiver checks and frees them on its
 * own CPU); a CPU whose table is full frees it all at once (a burst
 * through the depot). Objects of the constructed cache must come out holding
 * the constructor's pattern and go back holding it. Now and then a CPU reclaims
 * (every depot emptied, every other CPU's magazines drained while their owners
 * run, empty slabs back to the buddy). The torture's own bookkeeping (each
 * CPU's table of held objects) is kmalloc'ed.
 *
 * The check (BSP, all CPUs quiescent): the mailboxes emptied, the tables
 * freed, a full reclaim; then kmem_check() (K1-K8, docs/design.md 4.2), no
 * object in use in any cache the test used, every allocation matched by a free,
 * the test's caches destroyed (EBUSY if anything were still out), no large
 * block left, and every page kmem still holds is a slab of a cache the
 * kernel keeps (the vaspace nodes): pages = the slabs of the live caches.
 */
#include "kern.h"
#include "lf_spin.h"

#define KHELD 160
#define KMBOX 128
#define KSMALL 24
#define KCTOR_BYTE 0xc5

struct kobj {
	uint8_t *p;
	uint32_t size;
	int8_t cache; /* 0-2: the test's caches; -1: kmalloc */
	uint64_t tag;
};

struct kmbox {
	struct lf_spin lock;  /* (a) */
	lf_atomic_u32 n;      /* (a) written under lock, peeked without */
	struct kobj o[KMBOX]; /* under lock */
} LF_CACHE_ALIGNED;

struct kcpu {
	struct kobj *held; /* (c) kmalloc'ed: KHELD entries */
	unsigned nheld;
	uint64_t seq, allocs, frees;
} LF_CACHE_ALIGNED;

KERN_LATE_BSS static struct kmbox kmbox[MAX_CPUS];
KERN_LATE_BSS static struct kcpu kcpu[MAX_CPUS];
static struct kmem_cache *kcache[3];
static const uint32_t kcache_size[3] = { KSMALL, 200, 1000 };
static lf_atomic_u32 kstate; /* (a) 0, 1 creating, 2 ready, 3 failed */

static void kerr(struct cpu *c, uint64_t *errors, const char *what, uint64_t a,
		 uint64_t b)
{
	if ((*errors)++ < 4)
		kprintf("LFK error kmem cpu=%u what=%s a=%#lx b=%#lx\n", c->idx,
			what, a, b);
}

static void kctor(void *obj, void *arg)
{
	(void)arg;
	memset(obj, KCTOR_BYTE, KSMALL);
}

static bool kctor_intact(const uint8_t *p)
{
	for (unsigned i = 0; i < KSMALL; i++)
		if (p[i] != KCTOR_BYTE)
			return false;
	return true;
}

/* The caches, once, by the first CPU here; the others wait for them. */
static bool ksetup(void)
{
	uint32_t s = 0;
	/* Acq_rel: one CPU creates; pairs with the wait below. */
	if (lf_cas_u32(&kstate, &s, 1, LF_ACQ_REL)) {
		bool ok = true;
		for (int i = 0; i < 3; i++)
			ok &= kmem_cache_create(kmem, "torture", kcache_size[i],
						0, i == 0 ? kctor : NULL, NULL,
						NULL, &kcache[i]) == KMEM_OK;
		/* Release: the caches, for the acquire below. */
		lf_store_u32(&kstate, ok ? 2 : 3, LF_RELEASE);
	}
	/* Acquire: pairs with the release store of the creator. */
	while ((s = lf_load_u32(&kstate, LF_ACQUIRE)) == 1)
		lf_platform_pause();
	return s == 2;
}

static void kfill(struct kobj *o)
{
	uint64_t n = o->size / 8;
	uint64_t *w = (uint64_t *)o->p;
	for (uint64_t i = 0; i < n; i++)
		w[i] = o->tag ^ i;
	for (uint64_t i = n * 8; i < o->size; i++)
		o->p[i] = (uint8_t)o->tag;
}

static bool kintact(const struct kobj *o)
{
	uint64_t n = o->size / 8;
	const volatile uint64_t *w = (const uint64_t *)o->p;
	for (uint64_t i = 0; i < n; i++)
		if (w[i] != (o->tag ^ i))
			return false;
	for (uint64_t i = n * 8; i < o->size; i++)
		if (o->p[i] != (uint8_t)o->tag)
			return false;
	return true;
}

/* Check the owner pattern, put the constructed state back, free on cpu. */
static void kput(struct cpu *c, unsigned cpu, struct kobj *o, uint64_t *errors)
{
	if (!kintact(o))
		kerr(c, errors, "pattern", (uint64_t)(uintptr_t)o->p, o->tag);
	int rc;
	if (o->cache >= 0) {
		if (o->cache == 0)
			memset(o->p, KCTOR_BYTE, KSMALL);
		rc = kmem_cache_free(kcache[o->cache], cpu, o->p);
	} else {
		rc = kfree(kmem, cpu, o->p);
	}
	if (rc != KMEM_OK)
		kerr(c, errors, "free", (uint64_t)(uintptr_t)o->p,
		     (uint64_t)-rc);
	kcpu[cpu].frees++;
}

static bool kget(struct cpu *c, uint64_t r, struct kobj *o, uint64_t *errors)
{
	void *p;
	int rc;
	o->cache = (int8_t)(r % 5) - 2;
	if (o->cache >= 0) {
		o->size = kcache_size[o->cache];
		rc = kmem_cache_alloc(kcache[o->cache], c->idx, &p);
	} else {
		o->cache = -1;
		o->size =
			(r >> 8) % 32 == 0
				? (uint32_t)(2 * PAGE_SIZE +
					     (r >> 16) % (14 * PAGE_SIZE))
				: (uint32_t)(1 + (r >> 16) % KMEM_KMALLOC_MAX);
		rc = kmalloc(kmem, c->idx, o->size, &p);
	}
	if (rc != KMEM_OK) {
		if (rc != KMEM_ENOMEM)
			kerr(c, errors, "alloc", o->size, (uint64_t)-rc);
		return false;
	}
	o->p = p;
	if (o->cache == 0 && !kctor_intact(o->p))
		kerr(c, errors, "ctor", (uint64_t)(uintptr_t)p, 0);
	o->tag = (uint64_t)c->idx << 48 | ++kcpu[c->idx].seq;
	kfill(o);
	kcpu[c->idx].allocs++;
	return true;
}

static bool kpost(unsigned to, const struct kobj *o)
{
	struct kmbox *m = &kmbox[to];
	bool ok = false;
	lf_spin_lock(&m->lock);
	uint32_t n = lf_load_u32(&m->n, LF_RELAXED); /* Relaxed: locked */
	if (n < KMBOX) {
		m->o[n] = *o;
		lf_store_u32(&m->n, n + 1, LF_RELAXED);
		ok = true;
	}
	lf_spin_unlock(&m->lock);
	return ok;
}

/* Free what other CPUs posted to cpu's mailbox, on CPU cpu. */
static uint64_t kmbox_drain(struct cpu *c, unsigned cpu, unsigned box,
			    uint64_t *errors)
{
	struct kmbox *m = &kmbox[box];
	uint64_t done = 0;
	/* Relaxed: a peek; the lock orders what we take. */
	if (lf_load_u32(&m->n, LF_RELAXED) == 0)
		return 0;
	lf_spin_lock(&m->lock);
	uint32_t n = lf_load_u32(&m->n, LF_RELAXED);
	for (uint32_t i = 0; i < n; i++)
		kput(c, cpu, &m->o[i], errors);
	lf_store_u32(&m->n, 0, LF_RELAXED);
	lf_spin_unlock(&m->lock);
	done = n;
	return done;
}

void torture_kmem(struct cpu *c, uint64_t *ops, uint64_t *errors,
		  uint64_t *remote, uint64_t deadline)
{
	struct kcpu *k = &kcpu[c->idx];
	void *table;
	if (!ksetup() ||
	    kmalloc(kmem, c->idx, KHELD * sizeof(struct kobj), &table) != 0) {
		kerr(c, errors, "setup", 0, 0);
		return;
	}
	k->held = table;
	k->nheld = 0;
	while (!((*ops & 15) == 0 && rdtsc() >= deadline)) {
		uint64_t r = krand(&c->rng);
		unsigned what = (unsigned)(r % 100);
		(*ops)++;
		if (k->nheld == KHELD) {
			/* Full: free everything at once, a burst that
			 * overflows the magazines into the depot. */
			while (k->nheld > 0)
				kput(c, c->idx, &k->held[--k->nheld], errors);
		} else if (what < 55) {
			if (kget(c, r >> 7, &k->held[k->nheld], errors))
				k->nheld++;
		} else if (what < 75 && k->nheld > 0) {
			unsigned i = (unsigned)((r >> 8) % k->nheld);
			kput(c, c->idx, &k->held[i], errors);
			k->held[i] = k->held[--k->nheld];
		} else if (what < 95 && k->nheld > 0 && ncpus > 1) {
			unsigned i = (unsigned)((r >> 8) % k->nheld);
			unsigned to = (unsigned)((r >> 24) % ncpus);
			if (to != c->idx && kpost(to, &k->held[i]))
				k->held[i] = k->held[--k->nheld];
		} else if (what < 99) {
			*remote += kmbox_drain(c, c->idx, c->idx, errors);
		} else if ((r >> 40) % 16 == 0) {
			/* Reclaim under way: drains the others' magazines
			 * while their owners run. */
			kmem_reclaim(kmem, c->idx, true);
		}
	}
	while (k->nheld > 0)
		kput(c, c->idx, &k->held[--k->nheld], errors);
}

static void kcache_line(const char *name, struct kmem_cache_stats *st, bool ok)
{
	kprintf("LFK check name=kmem_cache cache=%s status=%s inuse=%lu "
		"allocs=%lu frees=%lu slabs=%lu depot_gets=%lu depot_puts=%lu "
		"drains=%lu reclaims=%lu mag=%u rejected=%lu\n",
		name, ok ? "pass" : "fail", st->inuse, st->allocs, st->frees,
		st->slabs, st->depot_gets, st->depot_puts, st->drains,
		st->reclaims, st->mag_size, st->rejected);
}

int torture_kmem_check(void)
{
	uint64_t errors = 0, allocs = 0, frees = 0;
	struct cpu *c = &cpus[0];
	bool ok = true;
	/* Acquire: pairs with the creator's release in ksetup(). */
	if (lf_load_u32(&kstate, LF_ACQUIRE) != 2)
		return -1;
	for (unsigned i = 0; i < ncpus; i++)
		kmbox_drain(c, 0, i, &errors);
	for (unsigned i = 0; i < ncpus; i++) {
		allocs += kcpu[i].allocs;
		frees += kcpu[i].frees;
		if (kcpu[i].held && kfree(kmem, 0, kcpu[i].held) != KMEM_OK)
			errors++;
		kcpu[i].held = NULL;
	}
	kmem_reclaim(kmem, 0, true);
	int inv = kmem_check(kmem);
	uint64_t live_pages = 0;
	for (int i = 0; i < 3; i++) {
		struct kmem_cache_stats st;
		kmem_cache_stats(kcache[i], &st);
		bool cok = st.inuse == 0 && st.allocs == st.frees &&
			   st.rejected == 0;
		kcache_line(st.name, &st, cok);
		ok &= cok && kmem_cache_destroy(kcache[i], 0) == KMEM_OK;
	}
	for (unsigned i = 0; i < KMEM_KMALLOC_CLASSES; i++) {
		struct kmem_cache_stats st;
		kmem_cache_stats(kmem_kmalloc_cache(kmem, i), &st);
		ok &= st.inuse == 0 && st.rejected == 0;
		live_pages += st.slabs * st.slab_pages;
	}
	/* The vaspace nodes: the one cache the kernel keeps. */
	struct kmem_cache_stats vs;
	kmem_cache_stats(vas_node_cache, &vs);
	uint64_t kept = vs.slabs * vs.slab_pages;
	struct kmem_stats ks;
	kmem_stats(kmem, &ks);
	/* Every page kmem holds: the kernel's caches' slabs, no large block. */
	ok &= inv == 0 && errors == 0 && allocs == frees &&
	      ks.large_pages == 0 && ks.large_allocs == ks.large_frees &&
	      live_pages == 0 && ks.pages == kept;
	lf_store_u32(&kstate, 0, LF_RELAXED); /* Relaxed: quiescent */
	char d[220];
	ksnprintf(d, sizeof(d),
		  "invariant=%d allocs=%lu frees=%lu errors=%lu "
		  "large=%lu/%lu pages=%lu vas_node_pages=%lu "
		  "kmalloc_pages=%lu",
		  inv, allocs, frees, errors, ks.large_allocs, ks.large_frees,
		  ks.pages, kept, live_pages);
	kprintf("LFK check name=kmem status=%s %s\n", ok ? "pass" : "fail", d);
	return ok ? 0 : -1;
}
