/*
 * bench_epoch.c: the read-side benchmark for the two epoch schemes. One
 * operation is entering and leaving an empty read-side section on the
 * thread's own registered record; nobody retires or synchronizes meanwhile,
 * so this is the reader's fixed cost and nothing else. The liburcu flavours
 * are in bench_urcu_memb.c and bench_urcu_qsbr.c.
 *
 * Implementations:
 *   lf_epoch  ours (lockfree/lf_epoch.h): enter loads the global epoch and
 *             announces it with a plain store and a compiler barrier where
 *             membarrier(2) works (the advancer pays), else with a seq_cst
 *             fence after it; exit is a release store. Both inline.
 *   ck_epoch  Concurrency Kit ck_epoch_begin/ck_epoch_end with a NULL
 *             section: on x86-64 (CK_MD_TSO) begin is an atomic exchange
 *             on the record (with CK_USE_CC_BUILTINS a load and a lock
 *             cmpxchg loop rather than ck's assembly xchg), a load of the
 *             global epoch and a store; end is a compiler barrier and a
 *             store. Both inline.
 *
 * Checks: every lf_epoch call must return LF_EPOCH_OK, every ck_epoch_end
 * must report the record inactive again, and after the run the domain must
 * show no participant inside a section.
 *
 * Records: lf_epoch records are registered by their thread and unregistered
 * at its end (re-registration is part of the lf_epoch API). ck_epoch has no
 * re-registration (an unregistered record is meant to be recycled, by any
 * thread), so each ck record is registered by the first thread that uses
 * its slot and stays registered; threads of later runs take it over.
 */
#include "bench.h"

#include "lf_epoch.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <ck_epoch.h>

/* Failures seen by the threads; checked after the join. */
static lf_atomic_u64 bench_epoch_errors;

static void bench_epoch_error(uint64_t n)
{
	if (n != 0)
		lf_fetch_add_u64(&bench_epoch_errors, n, LF_RELAXED);
}

static int bench_epoch_check_errors(const char *impl)
{
	/* Relaxed: the threads were joined. */
	uint64_t n = lf_load_u64(&bench_epoch_errors, LF_RELAXED);
	if (n != 0) {
		fprintf(stderr, "%s: %llu failed calls\n", impl,
			(unsigned long long)n);
		return -1;
	}
	return 0;
}

static const char *bench_epoch_never_skip(unsigned nthreads)
{
	(void)nthreads;
	return NULL;
}

/* ---- lf_epoch ---- */

static struct lf_epoch_domain bench_lf_domain;
static struct lf_epoch_record bench_lf_records[BENCH_MAX_THREADS];
static bool bench_lf_domain_ready;

static int bench_lf_epoch_setup(unsigned nthreads)
{
	(void)nthreads;
	if (!bench_lf_domain_ready) {
		lf_epoch_domain_init(&bench_lf_domain, 64);
		bench_lf_domain_ready = true;
	}
	lf_init_u64(&bench_epoch_errors, 0);
	return 0;
}

static void bench_lf_epoch_thread_init(unsigned id)
{
	if (lf_epoch_register(&bench_lf_domain, &bench_lf_records[id]) != 0)
		bench_epoch_error(1);
}

static uint64_t bench_lf_epoch_run(unsigned id, const struct bench_stop *stop)
{
	struct lf_epoch_record *rec = &bench_lf_records[id];
	uint64_t ops = 0;
	int err = 0;

	do {
		for (unsigned i = 0; i < BENCH_BATCH; i++) {
			err |= lf_epoch_enter(rec);
			err |= lf_epoch_exit(rec);
		}
		ops += BENCH_BATCH;
	} while (!bench_stopped(stop));
	bench_epoch_error(err != 0);
	return ops;
}

static void bench_lf_epoch_thread_fini(unsigned id)
{
	if (lf_epoch_unregister(&bench_lf_records[id]) != 0)
		bench_epoch_error(1);
}

static int bench_lf_epoch_check(void)
{
	struct lf_epoch_stats st;

	lf_epoch_stats(&bench_lf_domain, &st);
	if (st.active != 0 || st.participants != 0) {
		fprintf(stderr,
			"lf_epoch: %llu participants, %llu active "
			"after the run\n",
			(unsigned long long)st.participants,
			(unsigned long long)st.active);
		return -1;
	}
	return bench_epoch_check_errors("lf_epoch");
}

/*
 * One struct bench_impl per implementation (bench.h): the tables share their
 * shape by design.
 */
const struct bench_impl bench_lf_epoch = {
	.bench = "epoch",
	.impl = "lf_epoch",
	.ours = true,
	.skip = bench_epoch_never_skip,
	.setup = bench_lf_epoch_setup,
	.thread_init = bench_lf_epoch_thread_init,
	.run = bench_lf_epoch_run,
	.thread_fini = bench_lf_epoch_thread_fini,
	.check = bench_lf_epoch_check,
};

/* ---- ck_epoch ---- */

static ck_epoch_t bench_ck_epoch_global;
static struct {
	ck_epoch_record_t rec;
	bool registered; /* written by the slot's threads, one at a time */
} bench_ck_records[BENCH_MAX_THREADS] LF_CACHE_ALIGNED;
static bool bench_ck_epoch_ready;

static int bench_ck_epoch_setup(unsigned nthreads)
{
	(void)nthreads;
	if (!bench_ck_epoch_ready) {
		ck_epoch_init(&bench_ck_epoch_global);
		bench_ck_epoch_ready = true;
	}
	lf_init_u64(&bench_epoch_errors, 0);
	return 0;
}

static void bench_ck_epoch_thread_init(unsigned id)
{
	if (!bench_ck_records[id].registered) {
		ck_epoch_register(&bench_ck_epoch_global,
				  &bench_ck_records[id].rec, NULL);
		bench_ck_records[id].registered = true;
	}
}

static uint64_t bench_ck_epoch_run(unsigned id, const struct bench_stop *stop)
{
	ck_epoch_record_t *rec = &bench_ck_records[id].rec;
	uint64_t ops = 0;
	unsigned bad = 0;

	do {
		for (unsigned i = 0; i < BENCH_BATCH; i++) {
			ck_epoch_begin(rec, NULL);
			bad += !ck_epoch_end(rec, NULL);
		}
		ops += BENCH_BATCH;
	} while (!bench_stopped(stop));
	bench_epoch_error(bad);
	return ops;
}

static void bench_ck_epoch_thread_fini(unsigned id)
{
	(void)id;
}

static int bench_ck_epoch_check(void)
{
	/*
	 * Checks ck's records as the function above checks ours: both
	 * implementations are verified the same way.
	 */
	for (unsigned i = 0; i < BENCH_MAX_THREADS; i++) {
		if (!bench_ck_records[i].registered)
			continue;
		if (bench_ck_records[i].rec.active != 0) {
			fprintf(stderr, "ck_epoch: record %u still active\n",
				i);
			return -1;
		}
	}
	return bench_epoch_check_errors("ck_epoch");
}

const struct bench_impl bench_ck_epoch = {
	.bench = "epoch",
	.impl = "ck_epoch",
	.skip = bench_epoch_never_skip,
	.setup = bench_ck_epoch_setup,
	.thread_init = bench_ck_epoch_thread_init,
	.run = bench_ck_epoch_run,
	.thread_fini = bench_ck_epoch_thread_fini,
	.check = bench_ck_epoch_check,
};

/*
 * ---- epoch_retire: one op = retire one object, amortized over the polls
 * that retire runs every BENCH_RETIRE_POLL retirements, and the callbacks
 * they run (each only counts). Every thread retires its own ring of
 * objects; an object comes round again only after its callback ran. The
 * domain has the default batch: retire's polls advance the epoch (a heavy
 * barrier) once the record holds advance_at = LF_EPOCH_ADVANCE_POLLS * 64
 * stamped entries; E7 keeps fewer than advance_at + 2 * 64 pending, so the
 * ring never comes round to a pending object without a stall.
 */
#define BENCH_RETIRE_POLL 64
#define BENCH_RETIRE_RING 16384
_Static_assert(BENCH_RETIRE_RING >
		       (LF_EPOCH_ADVANCE_POLLS + 2) * BENCH_RETIRE_POLL,
	       "the ring holds E7's bound on pending entries");

struct bench_retire_obj {
	struct lf_epoch_entry entry; /* first: the callback gets it */
	ck_epoch_entry_t ck;
	bool pending; /* (o) retired, callback not run; owner thread only */
};

static struct bench_retire_obj (*bench_retire_objs)[BENCH_RETIRE_RING];
static struct lf_epoch_domain bench_retire_domain;
static struct lf_epoch_record bench_retire_recs[BENCH_MAX_THREADS];
static bool bench_retire_ready;

static void bench_retire_free(struct lf_epoch_entry *e)
{
	struct bench_retire_obj *o = (struct bench_retire_obj *)e;
	if (!o->pending)
		bench_epoch_error(1); /* ran twice, or never retired */
	o->pending = false;
}

static int bench_retire_setup(unsigned nthreads)
{
	(void)nthreads;
	if (bench_retire_objs == NULL) {
		bench_retire_objs =
			calloc(BENCH_MAX_THREADS, sizeof(*bench_retire_objs));
		if (bench_retire_objs == NULL)
			return -1;
	}
	if (!bench_retire_ready) {
		lf_epoch_domain_init(&bench_retire_domain, BENCH_RETIRE_POLL);
		bench_retire_ready = true;
	}
	lf_init_u64(&bench_epoch_errors, 0);
	return 0;
}

static void bench_lf_retire_thread_init(unsigned id)
{
	if (lf_epoch_register(&bench_retire_domain, &bench_retire_recs[id]))
		bench_epoch_error(1);
}

static uint64_t bench_lf_retire_run(unsigned id, const struct bench_stop *stop)
{
	struct lf_epoch_record *rec = &bench_retire_recs[id];
	struct bench_retire_obj *ring = bench_retire_objs[id];
	uint64_t ops = 0;
	unsigned next = 0;

	do {
		for (unsigned i = 0; i < BENCH_BATCH; i++) {
			struct bench_retire_obj *o = &ring[next];
			next = (next + 1) % BENCH_RETIRE_RING;
			while (o->pending)
				lf_epoch_poll(rec); /* the ring came round */
			o->pending = true;
			if (lf_epoch_retire(rec, &o->entry, bench_retire_free))
				bench_epoch_error(1);
		}
		ops += BENCH_BATCH;
	} while (!bench_stopped(stop));
	return ops;
}

static void bench_lf_retire_thread_fini(unsigned id)
{
	/* Everything retired runs before the next series reuses the ring. */
	if (lf_epoch_barrier(&bench_retire_recs[id]) != 0 ||
	    lf_epoch_unregister(&bench_retire_recs[id]) != 0)
		bench_epoch_error(1);
	for (unsigned i = 0; i < BENCH_RETIRE_RING; i++)
		if (bench_retire_objs[id][i].pending)
			bench_epoch_error(1);
}

static int bench_lf_retire_check(void)
{
	return bench_epoch_check_errors("lf_epoch retire");
}

const struct bench_impl bench_lf_epoch_retire = {
	.bench = "epoch_retire",
	.impl = "lf_epoch",
	.ours = true,
	.skip = bench_epoch_never_skip,
	.setup = bench_retire_setup,
	.thread_init = bench_lf_retire_thread_init,
	.run = bench_lf_retire_run,
	.thread_fini = bench_lf_retire_thread_fini,
	.check = bench_lf_retire_check,
};

/* ck_epoch_call on the thread's record, ck_epoch_poll as often as ours. */
static void bench_ck_retire_free(ck_epoch_entry_t *e)
{
	struct bench_retire_obj *o =
		(struct bench_retire_obj *)((char *)e -
					    offsetof(struct bench_retire_obj,
						     ck));
	if (!o->pending)
		bench_epoch_error(1);
	o->pending = false;
}

static uint64_t bench_ck_retire_run(unsigned id, const struct bench_stop *stop)
{
	ck_epoch_record_t *rec = &bench_ck_records[id].rec;
	struct bench_retire_obj *ring = bench_retire_objs[id];
	uint64_t ops = 0;
	unsigned next = 0;

	do {
		for (unsigned i = 0; i < BENCH_BATCH; i++) {
			struct bench_retire_obj *o = &ring[next];
			next = (next + 1) % BENCH_RETIRE_RING;
			while (o->pending)
				ck_epoch_poll(rec);
			o->pending = true;
			ck_epoch_call(rec, &o->ck, bench_ck_retire_free);
			if (next % BENCH_RETIRE_POLL == 0)
				ck_epoch_poll(rec);
		}
		ops += BENCH_BATCH;
	} while (!bench_stopped(stop));
	return ops;
}

static int bench_ck_retire_setup(unsigned nthreads)
{
	if (bench_retire_setup(nthreads) != 0)
		return -1;
	return bench_ck_epoch_setup(nthreads);
}

/*
 * ck_epoch's retire series has the shape of lf_epoch's above: each
 * implementation fills its own struct bench_impl (bench.h) with its own
 * functions, so that no timed loop calls an implementation indirectly.
 */
static void bench_ck_retire_thread_fini(unsigned id)
{
	ck_epoch_barrier(&bench_ck_records[id].rec);
	for (unsigned i = 0; i < BENCH_RETIRE_RING; i++)
		if (bench_retire_objs[id][i].pending)
			bench_epoch_error(1);
}

static int bench_ck_retire_check(void)
{
	return bench_epoch_check_errors("ck_epoch retire");
}

const struct bench_impl bench_ck_epoch_retire = {
	.bench = "epoch_retire",
	.impl = "ck_epoch",
	.skip = bench_epoch_never_skip,
	.setup = bench_ck_retire_setup,
	.thread_init = bench_ck_epoch_thread_init,
	.run = bench_ck_retire_run,
	.thread_fini = bench_ck_retire_thread_fini,
	.check = bench_ck_retire_check,
};

/*
 * ---- epoch_sync: one op = one grace-period wait on an otherwise idle
 * domain, every thread waiting in a loop: lf_epoch_synchronize (ours),
 * lf_epoch_barrier with nothing pending, ck_epoch_synchronize; liburcu's
 * synchronize_rcu is bench_urcu_memb_sync (bench_urcu_memb.c).
 */
/* Waits of one kind (synchronize or barrier) in a loop, 64 a batch. */
static uint64_t bench_lf_wait_run(unsigned id, const struct bench_stop *stop,
				  int (*wait)(struct lf_epoch_record *))
{
	struct lf_epoch_record *rec = &bench_lf_records[id];
	uint64_t ops = 0;
	int err = 0;

	do {
		for (unsigned i = 0; i < 64; i++)
			err |= wait(rec);
		ops += 64;
	} while (!bench_stopped(stop));
	bench_epoch_error(err != 0);
	return ops;
}

static uint64_t bench_lf_sync_run(unsigned id, const struct bench_stop *stop)
{
	return bench_lf_wait_run(id, stop, lf_epoch_synchronize);
}

static uint64_t bench_lf_barrier_run(unsigned id, const struct bench_stop *stop)
{
	return bench_lf_wait_run(id, stop, lf_epoch_barrier);
}

static uint64_t bench_ck_sync_run(unsigned id, const struct bench_stop *stop)
{
	ck_epoch_record_t *rec = &bench_ck_records[id].rec;
	uint64_t ops = 0;

	do {
		for (unsigned i = 0; i < 64; i++)
			ck_epoch_synchronize(rec);
		ops += 64;
	} while (!bench_stopped(stop));
	return ops;
}

const struct bench_impl bench_lf_epoch_sync = {
	.bench = "epoch_sync",
	.impl = "lf_synchronize",
	.ours = true,
	.skip = bench_epoch_never_skip,
	.setup = bench_lf_epoch_setup,
	.thread_init = bench_lf_epoch_thread_init,
	.run = bench_lf_sync_run,
	.thread_fini = bench_lf_epoch_thread_fini,
	.check = bench_lf_epoch_check,
};

const struct bench_impl bench_lf_epoch_barrier = {
	.bench = "epoch_sync",
	.impl = "lf_barrier",
	.skip = bench_epoch_never_skip,
	.setup = bench_lf_epoch_setup,
	.thread_init = bench_lf_epoch_thread_init,
	.run = bench_lf_barrier_run,
	.thread_fini = bench_lf_epoch_thread_fini,
	.check = bench_lf_epoch_check,
};

const struct bench_impl bench_ck_epoch_sync = {
	.bench = "epoch_sync",
	.impl = "ck_synchronize",
	.skip = bench_epoch_never_skip,
	.setup = bench_ck_epoch_setup,
	.thread_init = bench_ck_epoch_thread_init,
	.run = bench_ck_sync_run,
	.thread_fini = bench_ck_epoch_thread_fini,
	.check = bench_ck_epoch_check,
};
