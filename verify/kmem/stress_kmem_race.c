/*
 * stress_kmem_race.c: two threads (CPUs 0 and 1) free the same objects at
 * the same time (docs/design.md 4.4: racing double frees), for
 * ThreadSanitizer and the default build.
 *
 * Each round, one thread allocates RACE objects (a kmem cache's, or
 * kmalloc's, alternately), stamps each with the round and its index, and
 * both threads, released together by a barrier, free every one of them:
 * in odd rounds one from the front and one from the back, in even rounds
 * both from the front in lockstep (each waits for the other at every
 * object, so that the two frees of each start together). Of the two frees of an
 * object exactly one must return 0 and the other KMEM_EDOUBLE. Meanwhile each
 * thread holds objects of its own (allocated on its CPU, stamped with its
 * owner, a shadow byte per object exchanged atomically): an object left in
 * two magazines by a race would be handed out twice, to the other thread
 * or to the same one, and the shadow or the stamp would say so. At the end
 * the counts agree (frees, refusals, objects in use), kmem_check() holds
 * (K1-K8) and every page goes back to the source.
 *
 * Usage: stress_kmem_race ROUNDS
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kmem.h"
#include "kmem_src.h"
#include "platform_user.h"

#define RACE 64 /* objects freed twice each round */
#define HOLD 48 /* objects each thread holds across a round */
#define OBJ 64

static struct ksrc src;
static struct kmem *k;
static struct kmem_cache *cache;
static pthread_barrier_t bar;
static unsigned rounds;
static void *shared[RACE];
static int rc[2][RACE];
static atomic_uchar *shadow; /* per 64-byte granule: holder + 1 */
static unsigned long won[2], races, kfrees;
static atomic_uint arrive[2]; /* lockstep rounds: objects reached */

static atomic_uchar *granule(const void *p)
{
	return &shadow[((uintptr_t)p - src.base) / OBJ];
}

static void take(unsigned t, void *p, uint64_t stamp)
{
	unsigned char prev = atomic_exchange_explicit(
		granule(p), (unsigned char)(t + 1), memory_order_relaxed);
	if (prev != 0)
		CHECK(!"an object handed out twice");
	memcpy(p, &stamp, sizeof(stamp));
	memset((char *)p + 8, (int)(stamp & 0xff), OBJ - 8);
}

static void give(void *p, uint64_t stamp)
{
	uint64_t w;
	memcpy(&w, p, sizeof(w));
	if (w != stamp)
		CHECK(!"an object's stamp overwritten: held twice");
	unsigned char prev =
		atomic_exchange_explicit(granule(p), 0, memory_order_relaxed);
	CHECK(prev != 0);
}

static void *worker(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	lf_platform_user_set_cpu(t);
	void *held[HOLD];
	for (unsigned r = 0; r < rounds; r++) {
		bool kf = r % 3 == 2;
		uint64_t own = (uint64_t)(t + 1) << 56 | (uint64_t)r << 8;
		for (unsigned i = 0; i < HOLD; i++) {
			CHECK_EQ(kmem_cache_alloc(cache, t, &held[i]), 0);
			take(t, held[i], own | i);
		}
		if (r % 2 == t)
			for (unsigned i = 0; i < RACE; i++) {
				void *p;
				if (kf)
					CHECK_EQ(kmalloc(k, t, OBJ, &p), 0);
				else
					CHECK_EQ(kmem_cache_alloc(cache, t, &p),
						 0);
				take(t, p, (uint64_t)r << 8 | i);
				give(p, (uint64_t)r << 8 | i);
				shared[i] = p;
			}
		bool lockstep = r % 2 == 0;
		atomic_store_explicit(&arrive[t], 0, memory_order_relaxed);
		pthread_barrier_wait(&bar);
		for (unsigned j = 0; j < RACE; j++) {
			unsigned i = t && !lockstep ? RACE - 1 - j : j;
			if (lockstep) {
				atomic_store_explicit(&arrive[t], j + 1,
						      memory_order_release);
				for (unsigned spin = 0;
				     atomic_load_explicit(
					     &arrive[1 - t],
					     memory_order_acquire) < j + 1;
				     spin++)
					if (spin >
					    100000) /* it is off its CPU */
						sched_yield();
			}
			rc[t][i] = kf ? kfree(k, t, shared[i])
				      : kmem_cache_free(cache, t, shared[i]);
		}
		pthread_barrier_wait(&bar);
		if (t == 0)
			for (unsigned i = 0; i < RACE; i++) {
				if (rc[0][i] == 0 && rc[1][i] == KMEM_EDOUBLE)
					won[0]++;
				else if (rc[1][i] == 0 &&
					 rc[0][i] == KMEM_EDOUBLE)
					won[1]++;
				else
					CHECK(!"two frees of one object: not "
					       "exactly one refused");
				races++;
				kfrees += kf;
			}
		for (unsigned i = 0; i < HOLD; i++) {
			give(held[i], own | i);
			CHECK_EQ(kmem_cache_free(cache, t, held[i]), 0);
		}
		pthread_barrier_wait(&bar);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 2000;
	CHECK_FATAL(rounds > 0);
	CHECK_FATAL(ksrc_init(&src, 1024) == 0);
	k = ksrc_kmem(&src, 2, 32, 1);
	CHECK_FATAL(k != NULL);
	shadow = calloc(src.npages * KMEM_PAGE_SIZE / OBJ, 1);
	CHECK_FATAL(shadow != NULL);
	CHECK_FATAL(kmem_cache_create(k, "race", OBJ, 0, NULL, NULL, NULL,
				      &cache) == 0);
	pthread_barrier_init(&bar, NULL, 2);
	pthread_t th[2];
	for (unsigned t = 0; t < 2; t++)
		pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t);
	for (unsigned t = 0; t < 2; t++)
		pthread_join(th[t], NULL);
	struct kmem_cache_stats st, km;
	kmem_cache_stats(cache, &st);
	kmem_cache_stats(kmem_kmalloc_cache(k, 4), &km); /* kmalloc-64 */
	CHECK_EQ(st.inuse, 0);
	CHECK_EQ(km.inuse, 0);
	CHECK_EQ(st.rejected_by[-KMEM_EDOUBLE], races - kfrees);
	CHECK_EQ(km.rejected_by[-KMEM_EDOUBLE], kfrees);
	CHECK_EQ(st.rejected + km.rejected, races);
	CHECK_EQ(st.frees, st.allocs);
	CHECK_EQ(km.frees, kfrees);
	CHECK_EQ(kmem_check(k), 0);
	CHECK_EQ(kmem_cache_destroy(cache, 0), 0);
	kmem_reclaim(k, 0, true);
	CHECK_EQ(kmem_check(k), 0);
	CHECK_EQ(ksrc_held(&src), 0);
	printf("stress_kmem_race: %u rounds, %lu objects freed twice at once "
	       "(%lu by kfree): won by CPU 0 %lu, by CPU 1 %lu, the other "
	       "refused each time\n",
	       rounds, races, kfrees, won[0], won[1]);
	CHECK(races == (unsigned long)rounds * RACE);
	pthread_barrier_destroy(&bar);
	free(shadow);
	free(k);
	ksrc_fini(&src);
	return check_exit("stress_kmem_race");
}
