/*
 * fuzz_kmem.c: libFuzzer harness for kmem (kmem/kmem.h) against the
 * reference of verify/kmem/model_kmem.c (the set of live objects and a
 * byte owner map of the arena), with the operation sequence read from the
 * fuzzer's input.
 *
 * Input: a header, then operations until the input ends.
 *   byte 0   bits 0-1 CPUs - 1 (1 to 4); bits 2-3 the watermark (empty
 *            slabs a cache keeps, 0-3); bits 4-6 the first magazine size
 *            (1, 2, 4, ..., 64 rounds)
 *   then     opcode byte, its arguments (see fk_step)
 *
 * Checked: every allocation succeeds unless the arena (FK_PAGES pages) is
 * truly exhausted, which is then checked exactly: after ENOMEM a full
 * reclaim must leave the source with no free block of the order asked for
 * (no memory stranded, K7); every object inside its slab (or its large
 * block), aligned, overlapping no live object, its stamp intact when it is
 * freed; each bad free (double at once, double after a reclaim, interior,
 * wrong cache, foreign) gets its code and changes nothing (the rejected
 * count grows by one, the objects in use stay); a failing source gives
 * ESOURCE and changes nothing; kmem_check() (K1-K8) every 16 operations and
 * at the end, when everything is freed, destroyed and reclaimed, and the
 * source holds no page.
 */
#include <string.h>

#include "fz.h"
#include "kmem.h"
#include "kmem_i.h"
#include "kmem_src.h"

#define FK_PAGES 64
#define FK_LIVE 512
#define FK_CACHES 4

struct fk_obj {
	uint8_t *p;
	uint32_t size;
	int cache; /* -1: kmalloc */
	uint8_t stamp;
};

static struct {
	struct fz f;
	struct ksrc src;
	bool src_ready;
	struct kmem *k;
	_Alignas(64) uint8_t meta[1 << 20];
	struct kmem_cache *c[FK_CACHES];
	uint32_t csize[FK_CACHES], calign[FK_CACHES];
	unsigned cn[FK_CACHES];
	struct fk_obj live[FK_LIVE];
	unsigned nlive;
	unsigned ncpus;
	uint8_t owner[FK_PAGES * 4096];
} S;

static uint64_t fk_rejected(void)
{
	struct kmem_stats ks;
	kmem_stats(S.k, &ks);
	uint64_t r = ks.rejected;
	for (unsigned i = 0; i < KMEM_KMALLOC_CLASSES; i++) {
		struct kmem_cache_stats st;
		kmem_cache_stats(kmem_kmalloc_cache(S.k, i), &st);
		r += st.rejected;
	}
	for (unsigned i = 0; i < FK_CACHES; i++)
		if (S.c[i]) {
			struct kmem_cache_stats st;
			kmem_cache_stats(S.c[i], &st);
			r += st.rejected;
		}
	return r;
}

static void fk_took(uint8_t *p, uint32_t size, int ci)
{
	uintptr_t off = (uintptr_t)p - S.src.base;
	FZ_REQUIRE(&S.f, off + size <= sizeof(S.owner), "object %p outside", p);
	for (uint32_t i = 0; i < size; i++)
		FZ_REQUIRE(&S.f, !S.owner[off + i], "%p overlaps a live object",
			   p);
	memset(S.owner + off, 1, size);
	if (ci >= 0) {
		struct kmem_slab *s = kmem_slab_of(S.k, p);
		FZ_REQUIRE(&S.f, s && s->cache == S.c[ci],
			   "%p not in its cache", p);
		FZ_REQUIRE(&S.f, ((uintptr_t)p & (S.calign[ci] - 1)) == 0,
			   "%p misaligned", p);
		FZ_REQUIRE(&S.f,
			   (uintptr_t)p + size <=
				   (uintptr_t)s +
					   (KMEM_PAGE_SIZE << s->cache->order),
			   "%p past its slab", p);
		S.cn[ci]++;
	}
	struct fk_obj *o = &S.live[S.nlive++];
	o->p = p;
	o->size = size;
	o->cache = ci;
	o->stamp = (uint8_t)(S.f.op * 31 + 7);
	memset(p, o->stamp, size);
}

static struct fk_obj fk_drop(unsigned i)
{
	struct fk_obj o = S.live[i];
	for (uint32_t j = 0; j < o.size; j++)
		FZ_REQUIRE(&S.f, o.p[j] == o.stamp, "stamp of %p broken", o.p);
	memset(S.owner + ((uintptr_t)o.p - S.src.base), 0, o.size);
	if (o.cache >= 0)
		S.cn[o.cache]--;
	S.live[i] = S.live[--S.nlive];
	return o;
}

static int fk_free(const struct fk_obj *o, unsigned cpu)
{
	return o->cache >= 0 ? kmem_cache_free(S.c[o->cache], cpu, o->p)
			     : kfree(S.k, cpu, o->p);
}

/* ENOMEM must be exact: after a full reclaim no block of order fits. */
static void fk_enomem(unsigned order)
{
	kmem_reclaim(S.k, 0, true);
	uintptr_t a;
	int e = ksrc_alloc(&S.src, 0, order, &a);
	FZ_REQUIRE(&S.f, e == KMEM_ENOMEM,
		   "ENOMEM with an order-%u block "
		   "free after a reclaim",
		   order);
}

/* The slab order of the kmalloc class of size. */
static unsigned fk_class_order(uint32_t size)
{
	for (unsigned i = 0; i < KMEM_KMALLOC_CLASSES; i++) {
		struct kmem_cache_stats st;
		kmem_cache_stats(kmem_kmalloc_cache(S.k, i), &st);
		if (st.size >= size)
			return (unsigned)__builtin_ctz(st.slab_pages);
	}
	return 0;
}

static void fk_alloc(unsigned cpu)
{
	unsigned ci = fz_u8(&S.f) % (FK_CACHES + 1);
	uint16_t sz = fz_u16(&S.f);
	void *p;
	if (S.nlive == FK_LIVE)
		return;
	if (ci < FK_CACHES && S.c[ci]) {
		int e = kmem_cache_alloc(S.c[ci], cpu, &p);
		if (e == KMEM_ENOMEM) {
			struct kmem_cache_stats st;
			kmem_cache_stats(S.c[ci], &st);
			fk_enomem((unsigned)__builtin_ctz(st.slab_pages));
			return;
		}
		FZ_REQUIRE(&S.f, e == 0, "cache alloc: %s", kmem_strerror(e));
		fk_took(p, S.csize[ci], (int)ci);
		return;
	}
	uint32_t size = 1 + sz % (sz & 0x8000 ? 5 * 4096 : KMEM_KMALLOC_MAX);
	int e = kmalloc(S.k, cpu, size, &p);
	if (e == KMEM_ENOMEM) {
		unsigned o = 0;
		while (size > KMEM_KMALLOC_MAX && (4096u << o) < size)
			o++;
		if (size <= KMEM_KMALLOC_MAX)
			o = fk_class_order(size);
		fk_enomem(o);
		return;
	}
	FZ_REQUIRE(&S.f, e == 0, "kmalloc(%u): %s", size, kmem_strerror(e));
	fk_took(p, size, -1);
}

static void fk_free_op(unsigned cpu)
{
	unsigned i = fz_u16(&S.f);
	uint8_t how = fz_u8(&S.f);
	if (S.nlive == 0)
		return;
	struct fk_obj o = fk_drop(i % S.nlive);
	int e = fk_free(&o, cpu);
	FZ_REQUIRE(&S.f, e == 0, "free of %p: %s", o.p, kmem_strerror(e));
	if (how & 1) { /* double free at once: EDOUBLE, counted, no change */
		if (how & 2)
			kmem_reclaim(S.k, cpu, how & 4);
		uint64_t r0 = fk_rejected();
		e = fk_free(&o, (cpu + 1) % S.ncpus);
		FZ_REQUIRE(&S.f, e == KMEM_EDOUBLE, "double free of %p: %s",
			   o.p, kmem_strerror(e));
		FZ_REQUIRE(&S.f, fk_rejected() == r0 + 1, "double not counted");
	}
}

static void fk_bad(unsigned cpu)
{
	uint16_t i = fz_u16(&S.f), off = fz_u16(&S.f);
	uint8_t how = fz_u8(&S.f) % 3;
	uint64_t r0 = fk_rejected();
	int e, want;
	if (how == 0) { /* foreign: a page of the arena kmem never had, or
			 * memory outside it */
		uint8_t local;
		void *p = off & 1 ? (void *)&local
				  : (void *)(S.src.base +
					     (off % FK_PAGES) * 4096 +
					     (off >> 8));
		if (kmem_cache_of(S.k, p) || kmem_ksize(S.k, p) ||
		    (uintptr_t)p - S.src.base < sizeof(S.owner))
			return; /* an arena page: may be kmem's now */
		e = kfree(S.k, cpu, p);
		want = KMEM_EFOREIGN;
	} else if (S.nlive == 0) {
		return;
	} else if (how == 1) {
		struct fk_obj *o = &S.live[i % S.nlive];
		if (o->size < 2)
			return;
		void *in = o->p + 1 + off % (o->size - 1);
		e = o->cache >= 0 ? kmem_cache_free(S.c[o->cache], cpu, in)
				  : kfree(S.k, cpu, in);
		want = KMEM_EINTERIOR;
	} else {
		struct fk_obj *o = &S.live[i % S.nlive];
		unsigned other = off % FK_CACHES;
		if (!S.c[other] || (int)other == o->cache)
			return;
		e = kmem_cache_free(S.c[other], cpu, o->p);
		want = KMEM_EWRONG;
	}
	FZ_REQUIRE(&S.f, e == want, "bad free: %s, not %s", kmem_strerror(e),
		   kmem_strerror(want));
	FZ_REQUIRE(&S.f, fk_rejected() == r0 + 1, "bad free not counted");
}

static void fk_create(unsigned cpu)
{
	uint8_t b = fz_u8(&S.f);
	uint16_t size = fz_u16(&S.f);
	unsigned ci = b % FK_CACHES;
	if (S.c[ci]) {
		int e = kmem_cache_destroy(S.c[ci], cpu);
		FZ_REQUIRE(&S.f, e == (S.cn[ci] ? KMEM_EBUSY : 0),
			   "destroy with %u objects: %s", S.cn[ci],
			   kmem_strerror(e));
		if (e == 0)
			S.c[ci] = NULL;
		return;
	}
	S.csize[ci] = 1 + size % 6000;
	S.calign[ci] = 1u << ((b >> 2) % 10);
	int e = kmem_cache_create(S.k, "fuzz", S.csize[ci], S.calign[ci], NULL,
				  NULL, NULL, &S.c[ci]);
	FZ_REQUIRE(&S.f, e == 0, "create(%u, %u): %s", S.csize[ci],
		   S.calign[ci], kmem_strerror(e));
	if (S.calign[ci] < 8)
		S.calign[ci] = 8;
	S.cn[ci] = 0;
}

static void fk_source_fails(unsigned cpu)
{
	uint16_t sz = fz_u16(&S.f);
	void *p;
	uint64_t r0 = fk_rejected();
	size_t held = ksrc_held(&S.src);
	S.src.fail = -77;
	int e = kmalloc(S.k, cpu, 1 + sz % (5 * 4096), &p);
	S.src.fail = 0;
	if (e == 0) { /* served from a magazine or a slab: fine */
		fk_took(p, 1 + sz % (5 * 4096), -1);
		return;
	}
	FZ_REQUIRE(&S.f, e == KMEM_ESOURCE, "failing source: %s",
		   kmem_strerror(e));
	FZ_REQUIRE(&S.f, ksrc_held(&S.src) <= held && fk_rejected() == r0,
		   "a failing source changed something");
}

static void fk_check(void)
{
	int bad = kmem_check(S.k);
	FZ_REQUIRE(&S.f, bad == 0, "K%d broken", bad);
	for (unsigned i = 0; i < FK_CACHES; i++)
		if (S.c[i]) {
			struct kmem_cache_stats st;
			kmem_cache_stats(S.c[i], &st);
			FZ_REQUIRE(&S.f, st.inuse == S.cn[i],
				   "cache %u: %llu in use,"
				   " reference %u",
				   i, (unsigned long long)st.inuse, S.cn[i]);
		}
}

static void fk_step(void)
{
	uint8_t op = fz_u8(&S.f);
	unsigned cpu = (op >> 4) % S.ncpus;
	switch (op % 8) {
	case 0:
	case 1:
	case 2:
		fk_alloc(cpu);
		break;
	case 3:
	case 4:
		fk_free_op(cpu);
		break;
	case 5:
		fk_bad(cpu);
		break;
	case 6:
		fk_create(cpu);
		break;
	default:
		switch ((op >> 4) % 4) {
		case 0:
			kmem_reclaim(S.k, cpu, op & 0x40);
			break;
		case 1:
			kmem_cpu_drain(S.k, cpu);
			break;
		case 2:
			fk_source_fails(cpu);
			break;
		default:
			fk_check();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_init(&S.f, data, size);
	if (!S.src_ready) {
		if (ksrc_init(&S.src, FK_PAGES) != 0)
			abort();
		S.src_ready = true;
	}
	memset(S.src.used, 0, FK_PAGES);
	S.src.held = 0;
	S.src.fail = S.src.lie = 0;
	memset(S.owner, 0, sizeof(S.owner));
	memset(S.c, 0, sizeof(S.c));
	memset(S.cn, 0, sizeof(S.cn));
	S.nlive = 0;
	uint8_t h = fz_u8(&S.f);
	S.ncpus = 1 + (h & 3);
	struct kmem_config cfg = {
		.base = S.src.base,
		.size = FK_PAGES * KMEM_PAGE_SIZE,
		.ncpus = S.ncpus,
		.max_caches = KMEM_KMALLOC_CLASSES + FK_CACHES,
		.nmags = 64,
		.empty_max = (h >> 2) & 3,
		.mag_rounds = 1u << ((h >> 4) & 7),
		.source = { ksrc_alloc, ksrc_free, &S.src },
	};
	int e = kmem_init(&S.k, S.meta, sizeof(S.meta), &cfg);
	FZ_REQUIRE(&S.f, e == 0, "kmem_init: %s", kmem_strerror(e));
	while (fz_more(&S.f)) {
		S.f.op++;
		fk_step();
		if (S.f.op % 16 == 0)
			fk_check();
	}
	fk_check();
	while (S.nlive) {
		struct fk_obj o = fk_drop(S.nlive - 1);
		FZ_REQUIRE(&S.f, fk_free(&o, 0) == 0, "final free");
	}
	for (unsigned i = 0; i < FK_CACHES; i++)
		if (S.c[i])
			FZ_REQUIRE(&S.f, kmem_cache_destroy(S.c[i], 0) == 0,
				   "final destroy");
	kmem_reclaim(S.k, 0, true);
	FZ_REQUIRE(&S.f, kmem_check(S.k) == 0, "K%d at the end",
		   kmem_check(S.k));
	FZ_REQUIRE(&S.f, ksrc_held(&S.src) == 0, "%zu pages held at the end",
		   ksrc_held(&S.src));
	return 0;
}
