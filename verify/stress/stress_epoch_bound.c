/*
 * stress_epoch_bound.c: E7 of lockfree/lf_epoch.h, pending memory under a
 * steady retire load, where it can break: retire()'s polls advance the
 * epoch only in batches (advance_at stamped entries), and a batch that is
 * never advanced, or a skip that outlives the batch, lets pending
 * callbacks grow without bound.
 *   stress_epoch_bound THREADS MILLISECONDS [POLL_EVERY [ADVANCE_AT]]
 *
 * Every thread retires objects of its own ring in a tight loop and never
 * polls by itself, enters no section and runs no barrier: nothing stalls
 * the epoch, so every advance attempt succeeds and the bound holds at
 * every instant. After each retirement the thread checks
 *   B1 its record's pending count < advance_at + 2 * poll_every (E7),
 *      and the next object of its ring is free (the ring is longer than
 *      the bound: an object still pending when it comes round is a
 *      pending count past the bound that the statistics missed);
 * and every 256 retirements
 *   B2 the domain's pending count < THREADS * that bound.
 * The callbacks check
 *   B3 (E3, E4) the epoch is at least the stamp + 2, and the object was
 *      retired and not run yet.
 * At the end, once a barrier ran everything:
 *   B4 callbacks run == retirements, and advances <= 2 * retirements /
 *      advance_at + 2 * THREADS: a record advances at most twice per
 *      advance_at of its own retirements (one heavy barrier per batch,
 *      not one per poll).
 * The mode is the domain's default (ctest runs both, as for the other
 * epoch stress tests). A run in which some thread retired nothing fails.
 */
#include "lf_epoch.h"
#include "platform_user.h"
#include "workload.h"

#include <stdio.h>
#include <stdlib.h>

#define EB_THREADS 8
#define EB_RING 8192

struct eb_obj {
	struct lf_epoch_entry entry; /* first */
	bool pending;                /* (o) the retiring thread, its poll */
};

static struct {
	struct lf_epoch_domain dom;
	struct lf_epoch_record recs[EB_THREADS + 1];
	struct eb_obj ring[EB_THREADS][EB_RING];
	uint64_t retired[EB_THREADS]; /* (o) read after the join */
	uint64_t ran[EB_THREADS + 1]; /* (o) callbacks its polls ran */
	uint64_t most[EB_THREADS];    /* (o) the largest pending count seen */
	lf_atomic_u64 violations;
	uint64_t bound, deadline;
	unsigned threads;
} B;

static _Thread_local unsigned eb_self;

static void eb_fail(const char *what, unsigned t, uint64_t a, uint64_t b)
{
	fprintf(stderr, "epoch bound: thread %u: %s (%llu, %llu)\n", t, what,
		(unsigned long long)a, (unsigned long long)b);
	/* Relaxed: a count, read after the join. */
	lf_fetch_add_u64(&B.violations, 1, LF_RELAXED);
}

/* B3. Runs on the retiring thread (its own poll) or the final barrier. */
static void eb_free(struct lf_epoch_entry *e)
{
	struct eb_obj *o = (struct eb_obj *)e;
	/* Relaxed: the callback's thread advanced or saw the epoch itself. */
	uint64_t g = lf_load_u64(&B.dom.epoch, LF_RELAXED);
	if (g < e->epoch + 2)
		eb_fail("callback before its grace period (E3)", eb_self, g,
			e->epoch);
	if (!o->pending)
		eb_fail("callback of an object not pending (E4)", eb_self, 0,
			0);
	o->pending = false;
	B.ran[eb_self]++;
}

/* B2: the domain's pending count, a sum of per-record snapshots. */
static void eb_check_domain(unsigned id)
{
	struct lf_epoch_stats st;
	lf_epoch_stats(&B.dom, &st);
	if (st.pending >= B.threads * B.bound)
		eb_fail("domain pending past THREADS * bound (E7)", id,
			st.pending, B.threads * B.bound);
}

static void eb_thread(unsigned id, void *arg)
{
	(void)arg;
	struct lf_epoch_record *r = &B.recs[id];
	struct eb_obj *ring = B.ring[id];
	eb_self = id;
	lf_platform_user_set_cpu(id);
	if (lf_epoch_register(&B.dom, r) != LF_EPOCH_OK)
		abort();
	uint64_t n = 0, most = 0;
	while ((n & 1023) != 0 || wl_now_ns() < B.deadline) {
		struct eb_obj *o = &ring[n % EB_RING];
		if (o->pending) {
			eb_fail("ring came round to a pending object (E7)", id,
				n, EB_RING);
			break;
		}
		o->pending = true;
		if (lf_epoch_retire(r, &o->entry, eb_free) != LF_EPOCH_OK)
			eb_fail("retire failed", id, n, 0);
		n++;
		struct lf_epoch_record_stats rs;
		lf_epoch_record_stats(r, &rs);
		most = rs.pending > most ? rs.pending : most;
		if (rs.pending >= B.bound) {
			eb_fail("record pending past the bound (E7)", id,
				rs.pending, B.bound);
			break;
		}
		if ((n & 255) == 0)
			eb_check_domain(id);
	}
	B.retired[id] = n;
	B.most[id] = most;
	/*
	 * The record stays registered: an unregister would hand its entries
	 * to a thread still running, whose poll adopts them (E7 counts
	 * adopted orphans apart). The final barrier collects them.
	 */
}

static int eb_finish(void)
{
	struct lf_epoch_record *last = &B.recs[EB_THREADS];
	eb_self = EB_THREADS;
	if (lf_epoch_register(&B.dom, last) != LF_EPOCH_OK ||
	    lf_epoch_barrier(last) != LF_EPOCH_OK)
		eb_fail("final barrier failed", EB_THREADS, 0, 0);
	struct lf_epoch_stats st;
	lf_epoch_stats(&B.dom, &st);
	uint64_t retired = 0, ran = B.ran[EB_THREADS], most = 0;
	int rc = 0;
	for (unsigned t = 0; t < B.threads; t++) {
		ran += B.ran[t];
		retired += B.retired[t];
		most = B.most[t] > most ? B.most[t] : most;
		if (B.retired[t] == 0) {
			fprintf(stderr,
				"epoch bound: thread %u retired "
				"nothing\n",
				t);
			rc = 1; /* a run that did nothing proves nothing */
		}
	}
	if (st.pending != 0 || ran != retired)
		eb_fail("B4: callbacks run != retirements", EB_THREADS, ran,
			retired);
	uint64_t most_adv = 2 * retired / B.dom.advance_at + 2 * B.threads;
	if (st.advances > most_adv)
		eb_fail("B4: more advances than two per batch", EB_THREADS,
			st.advances, most_adv);
	printf("epoch bound: %u threads, %s mode, poll_every %u, advance_at "
	       "%llu: %llu retirements, %llu advances (at most %llu), most "
	       "pending %llu (bound %llu)\n",
	       B.threads,
	       lf_epoch_domain_asymmetric(&B.dom) ? "asymmetric" : "fenced",
	       B.dom.poll_every, (unsigned long long)B.dom.advance_at,
	       (unsigned long long)retired, (unsigned long long)st.advances,
	       (unsigned long long)most_adv, (unsigned long long)most,
	       (unsigned long long)B.bound);
	/* Relaxed: the threads were joined. */
	if (lf_load_u64(&B.violations, LF_RELAXED) != 0)
		rc = 1;
	printf("epoch bound: %s\n", rc == 0 ? "PASS" : "FAIL");
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr,
			"usage: %s THREADS MS [POLL_EVERY [ADVANCE_AT]]\n",
			argv[0]);
		return 2;
	}
	B.threads = (unsigned)atoi(argv[1]);
	uint32_t every = argc > 3 ? (uint32_t)atoi(argv[3]) : 16;
	if (B.threads < 1 || B.threads > EB_THREADS || every == 0)
		return 2;
	lf_epoch_domain_init(&B.dom, every);
	if (argc > 4)
		lf_epoch_domain_set_advance_at(&B.dom,
					       strtoull(argv[4], NULL, 0));
	B.bound = B.dom.advance_at + 2 * (uint64_t)B.dom.poll_every;
	if (B.bound >= EB_RING) {
		fprintf(stderr, "epoch bound: bound %llu >= ring %u\n",
			(unsigned long long)B.bound, EB_RING);
		return 2;
	}
	B.deadline = wl_now_ns() + (uint64_t)atoi(argv[2]) * 1000000u;
	wl_run_threads(B.threads, eb_thread, NULL);
	return eb_finish();
}
