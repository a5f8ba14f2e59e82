/*
 * stress_kmem.c: kmem under concurrent use, for ThreadSanitizer and
 * AddressSanitizer (and the default build's assertions).
 *
 * Each thread plays one CPU. It allocates from three caches (one with a
 * constructor) and from kmalloc (small and large sizes), stamps every
 * object with its owner (thread, sequence number; the rest of the object a
 * pattern derived from it), and either frees it itself or hands it to
 * another thread through a mailbox: the receiver checks the stamp before
 * freeing it on its own CPU (a remote free). A shadow byte per 8-byte
 * granule of the arena, exchanged atomically, says that no object is ever
 * handed out to two holders at once. Now and then a thread reclaims
 * (every CPU's magazines drained while their owners run); the source is
 * limited so that allocations run out of memory and drain under pressure.
 * At the end everything is freed: kmem_check() (K1-K8) holds, and every
 * page is back with the source. A run that did no operation fails.
 *
 * Usage: stress_kmem THREADS MS [PAGES]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "kmem.h"
#include "kmem_src.h"
#include "platform_user.h"

#define MAXT 16
#define HOLD 256
#define BOX 512

struct obj {
	uint8_t *p;
	size_t size;
	int cache; /* 0-2: caches[], -1 kmalloc */
};

struct box {
	pthread_mutex_t mu;
	struct obj o[BOX];
	unsigned n;
};

static struct ksrc src;
static struct kmem *k;
static struct kmem_cache *caches[3];
static const size_t csize[3] = { 24, 64, 200 };
static struct box boxes[MAXT];
static atomic_uchar *shadow;
static atomic_bool stop;
static atomic_ulong ops_done, remote_frees, enomem, reclaims;
static unsigned nthreads;

static void ctor(void *o, void *arg)
{
	(void)arg;
	memset(o, 0, 200);
}

static atomic_uchar *granule(const void *p)
{
	return &shadow[((uintptr_t)p - src.base) >> 3];
}

static void stamp(struct obj *o, unsigned t, uint64_t seq)
{
	uint64_t w = (uint64_t)t << 56 | seq;
	memcpy(o->p, &w, o->size < 8 ? o->size : 8);
	for (size_t i = 8; i < o->size; i++)
		o->p[i] = (uint8_t)(w + i);
	unsigned char prev = atomic_exchange_explicit(
		granule(o->p), (unsigned char)(t + 1), memory_order_relaxed);
	CHECK(prev == 0); /* handed out to two holders at once */
}

/* Check the stamp and release the object from the shadow, then free. */
static void release(struct obj *o, unsigned cpu)
{
	uint64_t w = 0;
	memcpy(&w, o->p, o->size < 8 ? o->size : 8);
	unsigned t = (unsigned)(w >> 56);
	CHECK(o->size < 8 || t < nthreads);
	for (size_t i = 8; i < o->size; i++)
		if (o->p[i] != (uint8_t)(w + i)) {
			CHECK(!"owner pattern overwritten");
			break;
		}
	unsigned char prev = atomic_exchange_explicit(granule(o->p), 0,
						      memory_order_relaxed);
	CHECK(prev != 0);
	int e = o->cache >= 0 ? kmem_cache_free(caches[o->cache], cpu, o->p)
			      : kfree(k, cpu, o->p);
	CHECK_EQ(e, 0);
}

static bool get(unsigned t, uint64_t seq, uint64_t r, struct obj *o)
{
	int e;
	void *p;
	o->cache = (int)(r % 5) - 2;
	if (o->cache >= 0) {
		o->size = csize[o->cache];
		e = kmem_cache_alloc(caches[o->cache], t, &p);
	} else {
		o->cache = -1;
		o->size = (r >> 8) % 64 == 0
				  ? 2 * KMEM_PAGE_SIZE + (r >> 16) % 9000
				  : 1 + (r >> 16) % KMEM_KMALLOC_MAX;
		e = kmalloc(k, t, o->size, &p);
	}
	if (e == KMEM_ENOMEM) {
		atomic_fetch_add_explicit(&enomem, 1, memory_order_relaxed);
		return false;
	}
	CHECK_EQ(e, 0);
	if (e)
		return false;
	o->p = p;
	stamp(o, t, seq);
	return true;
}

static void drain_box(unsigned t)
{
	struct obj tmp[BOX];
	pthread_mutex_lock(&boxes[t].mu);
	unsigned n = boxes[t].n;
	memcpy(tmp, boxes[t].o, n * sizeof(tmp[0]));
	boxes[t].n = 0;
	pthread_mutex_unlock(&boxes[t].mu);
	for (unsigned i = 0; i < n; i++)
		release(&tmp[i], t);
	atomic_fetch_add_explicit(&remote_frees, n, memory_order_relaxed);
}

static bool post(unsigned to, const struct obj *o)
{
	bool ok = false;
	pthread_mutex_lock(&boxes[to].mu);
	if (boxes[to].n < BOX) {
		boxes[to].o[boxes[to].n++] = *o;
		ok = true;
	}
	pthread_mutex_unlock(&boxes[to].mu);
	return ok;
}

static void *worker(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	lf_platform_user_set_cpu(t);
	struct obj held[HOLD];
	unsigned n = 0;
	uint64_t r = 0x9e3779b97f4a7c15ull * (t + 1), seq = 0, ops = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		unsigned what = (unsigned)(r % 100);
		if (what < 50 && n < HOLD) {
			if (get(t, seq++, r >> 3, &held[n]))
				n++;
		} else if (what < 80 && n > 0) {
			unsigned i = (unsigned)((r >> 8) % n);
			release(&held[i], t);
			held[i] = held[--n];
		} else if (what < 97 && n > 0) {
			unsigned i = (unsigned)((r >> 8) % n);
			unsigned to = (unsigned)((r >> 20) % nthreads);
			if (to != t && post(to, &held[i]))
				held[i] = held[--n];
		} else if (what < 98) {
			kmem_reclaim(k, t, (r >> 9) % 2);
			atomic_fetch_add_explicit(&reclaims, 1,
						  memory_order_relaxed);
		} else {
			drain_box(t);
		}
		ops++;
	}
	for (unsigned i = 0; i < n; i++)
		release(&held[i], t);
	atomic_fetch_add_explicit(&ops_done, ops, memory_order_relaxed);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: stress_kmem THREADS MS [PAGES]\n");
		return 2;
	}
	nthreads = (unsigned)atoi(argv[1]);
	unsigned ms = (unsigned)atoi(argv[2]);
	size_t pages = argc > 3 ? (size_t)atol(argv[3]) : 2048;
	CHECK_FATAL(nthreads >= 1 && nthreads <= MAXT);
	CHECK_FATAL(ksrc_init(&src, pages) == 0);
	k = ksrc_kmem(&src, nthreads, 32, 1);
	CHECK_FATAL(k != NULL);
	shadow = calloc(pages * KMEM_PAGE_SIZE / 8, 1);
	CHECK_FATAL(shadow != NULL);
	for (int i = 0; i < 3; i++)
		CHECK_FATAL(kmem_cache_create(k, "stress", csize[i], 0,
					      i == 2 ? ctor : NULL, NULL, NULL,
					      &caches[i]) == 0);
	for (unsigned t = 0; t < nthreads; t++)
		pthread_mutex_init(&boxes[t].mu, NULL);
	pthread_t th[MAXT];
	for (unsigned t = 0; t < nthreads; t++)
		pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t);
	struct timespec d = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&d, NULL);
	atomic_store(&stop, true);
	for (unsigned t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	for (unsigned t = 0; t < nthreads; t++)
		drain_box(t);
	CHECK_EQ(kmem_check(k), 0);
	for (int i = 0; i < 3; i++) {
		struct kmem_cache_stats st;
		kmem_cache_stats(caches[i], &st);
		CHECK_EQ(st.inuse, 0);
		printf("cache %d: allocs %lu depot gets %lu puts %lu contended "
		       "%lu mag %u drains %lu reclaims %lu\n",
		       i, (unsigned long)st.allocs,
		       (unsigned long)st.depot_gets,
		       (unsigned long)st.depot_puts,
		       (unsigned long)st.depot_contended, st.mag_size,
		       (unsigned long)st.drains, (unsigned long)st.reclaims);
		CHECK_EQ(kmem_cache_destroy(caches[i], 0), 0);
	}
	kmem_reclaim(k, 0, true);
	CHECK_EQ(kmem_check(k), 0);
	CHECK_EQ(ksrc_held(&src), 0); /* every page back */
	unsigned long ops = atomic_load(&ops_done);
	printf("stress_kmem: %u threads, %lu operations, %lu remote frees, "
	       "%lu ENOMEM, %lu reclaims\n",
	       nthreads, ops, atomic_load(&remote_frees), atomic_load(&enomem),
	       atomic_load(&reclaims));
	CHECK(ops > 0);
	CHECK(atomic_load(&remote_frees) > 0);
	free(shadow);
	free(k);
	ksrc_fini(&src);
	return check_exit("stress_kmem");
}
