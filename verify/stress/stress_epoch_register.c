/*
 * stress_epoch_register.c: registration against a tight advancer, for
 * ThreadSanitizer. A first registration initialises the record with plain
 * stores and links it into the domain with a release CAS; an advancer that
 * walks the records (acquire) reads the new record's fields. Weakening that
 * release is a data race only if a walk reaches the record soon after it
 * was linked, which a workload that registers now and then hits about one
 * run in five. Here, round after round, a fresh domain gets threads that
 * register records one after another while another thread calls
 * lf_epoch_try_advance() and lf_epoch_stats() in a tight loop, so walks
 * meet fresh records thousands of times per run.
 *   stress_epoch_register [ROUNDS]
 * Checks (any preset): every record registered is seen by the domain
 * (participants == records), and the advancer made progress every round.
 */
#include "lf_epoch.h"
#include "workload.h"

#include <stdio.h>
#include <stdlib.h>

#define ER_THREADS 3
#define ER_PER_THREAD 24

static struct lf_epoch_domain er_dom;
static struct lf_epoch_record er_recs[ER_THREADS][ER_PER_THREAD];
static lf_atomic_u32 er_done;
static lf_atomic_u64 er_walks;

static void er_thread(unsigned id, void *arg)
{
	(void)arg;
	if (id == ER_THREADS) {
		/* The advancer: walks until every registrar is done. */
		uint64_t walks = 0;
		/* Acquire: pairs with the registrars' release increments. */
		while (lf_load_u32(&er_done, LF_ACQUIRE) < ER_THREADS ||
		       walks == 0) {
			struct lf_epoch_stats st;
			lf_epoch_try_advance(&er_dom);
			lf_epoch_stats(&er_dom, &st);
			walks++;
		}
		/* Relaxed: read after the join. */
		lf_store_u64(&er_walks, walks, LF_RELAXED);
		return;
	}
	for (unsigned i = 0; i < ER_PER_THREAD; i++) {
		struct lf_epoch_record *r = &er_recs[id][i];
		if (lf_epoch_register(&er_dom, r) != LF_EPOCH_OK)
			abort();
		/* A section on it: the advancer reads its state word too. */
		lf_epoch_enter(r);
		lf_epoch_exit(r);
	}
	/* Release: pairs with the advancer's acquire. */
	lf_fetch_add_u32(&er_done, 1, LF_RELEASE);
}

int main(int argc, char **argv)
{
	unsigned rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 200;
	uint64_t walks = 0;
	for (unsigned round = 0; round < rounds; round++) {
		for (unsigned t = 0; t < ER_THREADS; t++)
			for (unsigned i = 0; i < ER_PER_THREAD; i++)
				er_recs[t][i] = (struct lf_epoch_record){ 0 };
		lf_epoch_domain_init(&er_dom, 16);
		lf_init_u32(&er_done, 0);
		wl_run_threads(ER_THREADS + 1, er_thread, NULL);
		struct lf_epoch_stats st;
		lf_epoch_stats(&er_dom, &st);
		if (st.participants != ER_THREADS * ER_PER_THREAD) {
			fprintf(stderr, "round %u: %llu participants of %u\n",
				round, (unsigned long long)st.participants,
				ER_THREADS * ER_PER_THREAD);
			return 1;
		}
		walks += lf_load_u64(&er_walks, LF_RELAXED);
	}
	printf("epoch register: %u rounds, %llu walks: PASS\n", rounds,
	       (unsigned long long)walks);
	return 0;
}
