/*
 * stress_epoch_torture.c: the properties of lockfree/lf_epoch.h, each
 * checked where it can break, by threads that do everything at once.
 *   stress_epoch_torture THREADS MILLISECONDS [SEED]
 *
 *   P1 (E3) no reader ever sees a reclaimed object: readers in (sometimes
 *      nested) sections check every object they reach, in the inner and
 *      again in the outer section after the inner one ended;
 *   P2 (E4) every callback runs exactly once: per object, callbacks run ==
 *      retirements, at the end and never ahead (a callback of an object
 *      not retired, or run twice, is caught when it runs);
 *   P3 synchronize waits for every section that began before it: each
 *      thread publishes an odd section counter while inside; a
 *      synchronizer that saw it odd before the call must see it changed
 *      after;
 *   P4 (E6) barrier waits for everything: every retirement that had
 *      returned when the barrier was called has had its callback run when
 *      it returns, including callbacks that another thread's poll holds
 *      (some callbacks are slow, to widen that window);
 *   P5 poll makes progress without blocking: a thread holds long sections
 *      while others poll and retire (a blocking poll hangs the test);
 *   P6 a callback may retire: "chain" objects retire themselves once more
 *      from inside their first callback, on the record being run.
 * The mode is the domain's default: asymmetric where membarrier(2) works,
 * fenced under ThreadSanitizer or with LF_NO_HEAVY_BARRIER=1 (ctest runs
 * both). A run that did no operation of each kind fails.
 */
#include "lf_epoch.h"
#include "lf_stack.h"
#include "platform_user.h"
#include "workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ET_THREADS 16
#define ET_SLOTS 8
#define ET_OBJS 256
#define ET_LIVE 0x11feull
#define ET_DEAD 0xdeadull

struct et_obj {
	struct lf_epoch_entry entry; /* first */
	lf_atomic_u64 magic;
	lf_atomic_u64 retires; /* retire() calls that returned */
	lf_atomic_u64 runs;    /* callbacks run */
	lf_atomic_u64 started; /* retire() calls begun */
	uint32_t stage;        /* (o) chain: 0 first retire, 1 second */
	bool chain, slow;      /* (o) set by the retiring writer */
} __attribute__((aligned(64)));

static struct {
	struct lf_epoch_domain dom;
	struct lf_epoch_record recs[ET_THREADS + 1];
	struct et_obj objs[ET_OBJS];
	lf_atomic_u32 links[ET_OBJS];
	struct lf_stack pool;
	lf_atomic_ptr slot[ET_SLOTS];
	lf_atomic_u64 insec[ET_THREADS]; /* odd while in a section */
	lf_atomic_u64 violations;
	lf_atomic_u64
		count[6]; /* reads, writes, syncs, barriers, long, chain */
	uint64_t deadline;
	uint64_t seed;
	unsigned threads;
} E;

static _Thread_local struct lf_epoch_record *et_rec;

static void et_fail(const char *what, long i)
{
	fprintf(stderr, "epoch torture: %s (object %ld)\n", what, i);
	lf_fetch_add_u64(&E.violations, 1, LF_RELAXED);
}

static void et_count(int k)
{
	lf_fetch_add_u64(&E.count[k], 1, LF_RELAXED);
}

static void et_spin(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		lf_platform_pause();
}

static void et_free(struct lf_epoch_entry *e)
{
	struct et_obj *o = (struct et_obj *)e;
	long i = o - E.objs;
	/* Relaxed: counters, compared at the end and by barriers (P2, P4). */
	uint64_t runs = lf_load_u64(&o->runs, LF_RELAXED);
	if (runs + 1 > lf_load_u64(&o->started, LF_RELAXED))
		et_fail("callback ran more often than retire was called", i);
	if (o->slow)
		et_spin(2000); /* a poll holds its entries meanwhile (P4) */
	if (o->chain && o->stage == 0) {
		/* P6: retire again from inside the callback. */
		o->stage = 1;
		lf_fetch_add_u64(&o->started, 1, LF_RELAXED);
		lf_fetch_add_u64(&o->runs, 1, LF_RELAXED);
		if (lf_epoch_retire(et_rec, &o->entry, et_free) != LF_EPOCH_OK)
			et_fail("retire from a callback failed", i);
		lf_fetch_add_u64(&o->retires, 1, LF_RELAXED);
		et_count(5);
		return;
	}
	lf_store_u64(&o->magic, ET_DEAD, LF_RELAXED);
	lf_fetch_add_u64(&o->runs, 1, LF_RELAXED);
	/* The pool's push releases the object to the next writer. */
	lf_stack_push(&E.pool, E.links, (uint32_t)i);
}

static void et_check(struct et_obj *o)
{
	/* Relaxed: the object is protected by the section (E3). */
	if (lf_load_u64(&o->magic, LF_RELAXED) != ET_LIVE)
		et_fail("reader saw a reclaimed object", o - E.objs);
}

/* P1, P3, P5: a section, nested sometimes, long sometimes. */
static void et_read(struct lf_epoch_record *r, unsigned id, uint64_t rnd)
{
	bool nest = (rnd >> 16) % 4 == 0, lng = (rnd >> 24) % 256 == 0;
	lf_epoch_enter(r);
	/* Release: the announcement above is before it (P3). */
	uint64_t c = lf_load_u64(&E.insec[id], LF_RELAXED);
	lf_store_u64(&E.insec[id], c + 1, LF_RELEASE);
	if (nest)
		lf_epoch_enter(r);
	/* Acquire: pairs with the writer's acq_rel exchange. */
	struct et_obj *o =
		lf_load_ptr(&E.slot[(rnd >> 8) % ET_SLOTS], LF_ACQUIRE);
	et_check(o);
	if (nest) {
		lf_epoch_exit(r);
		et_spin(50);
		et_check(o); /* the outer section still protects it */
	}
	if (lng) {
		et_spin(20000); /* others poll meanwhile (P5) */
		et_check(o);
		et_count(4);
	}
	/* Relaxed: before exit's release store, which publishes it. */
	lf_store_u64(&E.insec[id], c + 2, LF_RELAXED);
	lf_epoch_exit(r);
	et_count(0);
}

static void et_write(struct lf_epoch_record *r, uint64_t rnd)
{
	uint32_t i;
	while ((i = lf_stack_pop(&E.pool, E.links)) == LF_STACK_NIL)
		lf_epoch_poll(r); /* never blocks: others hold no lock (P5) */
	struct et_obj *o = &E.objs[i];
	o->chain = (rnd >> 32) % 8 == 0;
	o->slow = (rnd >> 36) % 16 == 0;
	o->stage = 0;
	lf_store_u64(&o->magic, ET_LIVE, LF_RELAXED);
	/* Acq_rel: publishes o and takes the old object over. */
	struct et_obj *old =
		lf_xchg_ptr(&E.slot[(rnd >> 8) % ET_SLOTS], o, LF_ACQ_REL);
	lf_fetch_add_u64(&old->started, 1, LF_RELAXED);
	if (lf_epoch_retire(r, &old->entry, et_free) != LF_EPOCH_OK)
		et_fail("retire failed", old - E.objs);
	lf_fetch_add_u64(&old->retires, 1, LF_RELAXED);
	et_count(1);
}

/* P3: every section seen open before synchronize has ended after it. */
static void et_sync(struct lf_epoch_record *r, unsigned self)
{
	uint64_t before[ET_THREADS];
	for (unsigned t = 0; t < E.threads; t++)
		/* Acquire: pairs with the release store in et_read(). */
		before[t] = lf_load_u64(&E.insec[t], LF_ACQUIRE);
	if (lf_epoch_synchronize(r) != LF_EPOCH_OK)
		et_fail("synchronize failed", -1);
	for (unsigned t = 0; t < E.threads; t++) {
		if (t == self || (before[t] & 1) == 0)
			continue;
		/* Acquire: what exit published, seen through the advance. */
		if (lf_load_u64(&E.insec[t], LF_ACQUIRE) == before[t])
			et_fail("synchronize returned inside an older section",
				(long)t);
	}
	et_count(2);
}

/* P4: what was retired before the call has run when barrier returns. */
static void et_barrier(struct lf_epoch_record *r)
{
	static _Thread_local uint64_t before[ET_OBJS];
	for (unsigned i = 0; i < ET_OBJS; i++)
		/* Relaxed: counters; the retires happened before the call. */
		before[i] = lf_load_u64(&E.objs[i].retires, LF_RELAXED);
	if (lf_epoch_barrier(r) != LF_EPOCH_OK)
		et_fail("barrier failed", -1);
	for (unsigned i = 0; i < ET_OBJS; i++)
		if (lf_load_u64(&E.objs[i].runs, LF_RELAXED) < before[i])
			et_fail("barrier returned before a callback pending "
				"at its call had run",
				(long)i);
	et_count(3);
}

static void et_thread(unsigned id, void *arg)
{
	(void)arg;
	struct lf_epoch_record *r = &E.recs[id];
	et_rec = r;
	lf_platform_user_set_cpu(id);
	uint64_t rng = E.seed * 0x9e3779b97f4a7c15ull + id + 1, ops = 0;
	if (lf_epoch_register(&E.dom, r) != LF_EPOCH_OK)
		abort();
	while ((ops & 63) != 0 || wl_now_ns() < E.deadline) {
		uint64_t rnd = wl_rand(&rng);
		unsigned op = rnd % 512;
		if (op < 300)
			et_read(r, id, rnd);
		else if (op < 500)
			et_write(r, rnd);
		else if (op < 508)
			et_sync(r, id);
		else
			et_barrier(r);
		ops++;
	}
	if (lf_epoch_unregister(r) != LF_EPOCH_OK)
		et_fail("unregister failed", -1);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s THREADS MS [SEED]\n", argv[0]);
		return 2;
	}
	E.threads = (unsigned)atoi(argv[1]);
	if (E.threads < 2 || E.threads > ET_THREADS)
		return 2;
	E.seed = argc > 3 ? strtoull(argv[3], NULL, 0) : 1;
	lf_epoch_domain_init(&E.dom, 8);
	lf_stack_init(&E.pool);
	for (unsigned i = 0; i < ET_OBJS; i++) {
		lf_init_u64(&E.objs[i].magic, ET_LIVE);
		if (i < ET_SLOTS)
			lf_init_ptr(&E.slot[i], &E.objs[i]);
		else
			lf_stack_push(&E.pool, E.links, i);
	}
	E.deadline = wl_now_ns() + (uint64_t)atoi(argv[2]) * 1000000u;
	wl_run_threads(E.threads, et_thread, NULL);

	/* Quiescent: a last barrier runs everything still pending (E5). */
	struct lf_epoch_record *last = &E.recs[ET_THREADS];
	et_rec = last;
	if (lf_epoch_register(&E.dom, last) != LF_EPOCH_OK)
		abort();
	et_barrier(last);
	struct lf_epoch_stats st;
	lf_epoch_stats(&E.dom, &st);
	if (st.pending != 0 || st.active != 0)
		et_fail("callbacks pending or sections open at the end", -1);
	uint64_t total = 0;
	for (unsigned i = 0; i < ET_OBJS; i++) {
		struct et_obj *o = &E.objs[i];
		uint64_t n = lf_load_u64(&o->runs, LF_RELAXED);
		if (n != lf_load_u64(&o->retires, LF_RELAXED))
			et_fail("callbacks run != retirements", (long)i);
		total += n;
	}
	static const char *const names[6] = {
		"reads",    "writes",        "syncs",
		"barriers", "long sections", "callback retires"
	};
	int rc = lf_load_u64(&E.violations, LF_RELAXED) != 0;
	printf("epoch torture: %u threads, %s mode, %llu callbacks, "
	       "%llu advances\n",
	       E.threads,
	       lf_epoch_domain_asymmetric(&E.dom) ? "asymmetric" : "fenced",
	       (unsigned long long)total, (unsigned long long)st.advances);
	for (int k = 0; k < 6; k++) {
		uint64_t n = lf_load_u64(&E.count[k], LF_RELAXED);
		printf("  %-16s %llu\n", names[k], (unsigned long long)n);
		if (n == 0) {
			fprintf(stderr, "epoch torture: no %s\n", names[k]);
			rc = 1; /* a run that did none proves nothing */
		}
	}
	printf("epoch torture: %s\n", rc == 0 ? "PASS" : "FAIL");
	return rc;
}
