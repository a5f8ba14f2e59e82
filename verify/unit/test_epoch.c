/*
 * test_epoch.c: epoch reclamation on one thread that owns several records
 * (each record is one participant; one thread may drive several). Checks
 * the invariants of lf_epoch.h by number, the statistics that make a stall
 * visible, and every bad-input path of the API.
 */
#include "check.h"
#include "lf_epoch.h"

struct obj {
	struct lf_epoch_entry entry;
	int freed;
};

static struct lf_epoch_domain dom;
static int runs;
static int early; /* callbacks that ran before e + 2 (E3) */

static void obj_free(struct lf_epoch_entry *e)
{
	struct obj *o = (struct obj *)e;
	if (lf_load_u64(&dom.epoch, LF_RELAXED) < e->epoch + 2)
		early++;
	o->freed++;
	runs++;
}

static struct lf_epoch_record_stats rstats(struct lf_epoch_record *r)
{
	struct lf_epoch_record_stats s;
	lf_epoch_record_stats(r, &s);
	return s;
}

static void test_bad_input(void)
{
	static struct lf_epoch_record fresh, a;
	static struct lf_epoch_domain other;
	lf_epoch_domain_init(&dom, 1000);
	lf_epoch_domain_init(&other, 1000);
	struct obj o = { 0 };

	/* A record never registered: everything is refused, nothing changes. */
	CHECK_EQ(lf_epoch_enter(&fresh), LF_EPOCH_ENOTREG);
	CHECK_EQ(fresh.nest, 0);
	CHECK_EQ(lf_epoch_exit(&fresh), LF_EPOCH_ENOTIN);
	CHECK_EQ(lf_epoch_unregister(&fresh), LF_EPOCH_ENOTREG);
	CHECK_EQ(lf_epoch_retire(&fresh, &o.entry, obj_free), LF_EPOCH_ENOTREG);
	CHECK_EQ(lf_epoch_poll(&fresh), LF_EPOCH_ENOTREG);
	CHECK_EQ(lf_epoch_synchronize(&fresh), LF_EPOCH_ENOTREG);
	CHECK_EQ(lf_epoch_barrier(&fresh), LF_EPOCH_ENOTREG);
	CHECK(lf_load_ptr(&dom.records, LF_RELAXED) == NULL);

	CHECK_EQ(lf_epoch_register(&dom, &a), LF_EPOCH_OK);
	CHECK_EQ(lf_epoch_register(&dom, &a), LF_EPOCH_EALREADY);
	CHECK_EQ(lf_epoch_register(&other, &a), LF_EPOCH_EDOMAIN);
	CHECK(lf_load_ptr(&other.records, LF_RELAXED) == NULL);

	/* Leaving a section not entered. */
	CHECK_EQ(lf_epoch_exit(&a), LF_EPOCH_ENOTIN);
	CHECK_EQ(lf_load_u64(&a.state, LF_RELAXED), 0);
	CHECK_EQ(a.nest, 0);

	/* Retire of nothing. */
	CHECK_EQ(lf_epoch_retire(&a, NULL, obj_free), LF_EPOCH_EINVAL);
	CHECK_EQ(lf_epoch_retire(&a, &o.entry, NULL), LF_EPOCH_EINVAL);
	CHECK_EQ(rstats(&a).pending, 0);

	/* Waiting for others from inside a section would wait for itself. */
	CHECK_EQ(lf_epoch_enter(&a), LF_EPOCH_OK);
	uint64_t g = lf_load_u64(&dom.epoch, LF_RELAXED);
	CHECK_EQ(lf_epoch_synchronize(&a), LF_EPOCH_EBUSY);
	CHECK_EQ(lf_epoch_barrier(&a), LF_EPOCH_EBUSY);
	CHECK_EQ(lf_epoch_unregister(&a), LF_EPOCH_EBUSY);
	CHECK(rstats(&a).registered);
	CHECK_EQ(lf_load_u64(&dom.epoch, LF_RELAXED), g);
	CHECK_EQ(lf_epoch_exit(&a), LF_EPOCH_OK);

	/* Nesting too deep is refused, not wrapped. */
	a.nest = UINT32_MAX;
	CHECK_EQ(lf_epoch_enter(&a), LF_EPOCH_ENEST);
	CHECK_EQ(a.nest, UINT32_MAX);
	a.nest = 0;

	/* Unregistering twice. */
	CHECK_EQ(lf_epoch_unregister(&a), LF_EPOCH_OK);
	CHECK_EQ(lf_epoch_unregister(&a), LF_EPOCH_ENOTREG);
	CHECK_EQ(lf_epoch_enter(&a), LF_EPOCH_ENOTREG);
	CHECK(!rstats(&a).registered);
}

static void test_nesting(void)
{
	static struct lf_epoch_record a;
	lf_epoch_domain_init(&dom, 1000);
	CHECK_EQ(lf_epoch_register(&dom, &a), LF_EPOCH_OK);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(lf_epoch_enter(&a), LF_EPOCH_OK);
	CHECK(lf_epoch_in_section(&a));
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(lf_epoch_exit(&a), LF_EPOCH_OK);
		CHECK(rstats(&a).active); /* still inside the outer section */
	}
	CHECK_EQ(lf_epoch_exit(&a), LF_EPOCH_OK);
	CHECK(!rstats(&a).active);
	CHECK(!lf_epoch_in_section(&a));
	CHECK_EQ(lf_epoch_exit(&a), LF_EPOCH_ENOTIN);
}

/*
 * Each test starts from a domain of its own: a fresh one with a, b and c
 * (those not NULL) registered and the callback counters cleared.
 */
static void fresh_domain(struct lf_epoch_record *a, struct lf_epoch_record *b,
			 struct lf_epoch_record *c)
{
	lf_epoch_domain_init(&dom, 1000);
	struct lf_epoch_record *r[3] = { a, b, c };
	for (int i = 0; i < 3; i++)
		if (r[i] != NULL)
			CHECK_EQ(lf_epoch_register(&dom, r[i]), LF_EPOCH_OK);
	runs = early = 0;
}

/* E1/E3: a retired object waits for two advances, then runs once. */
static void test_grace_period(void)
{
	static struct lf_epoch_record a;
	fresh_domain(&a, NULL, NULL);
	struct obj o = { 0 };
	CHECK_EQ(lf_epoch_poll(&a), 0); /* nothing pending: no advance */
	uint64_t g0 = lf_load_u64(&dom.epoch, LF_RELAXED);
	CHECK_EQ(lf_epoch_retire(&a, &o.entry, obj_free), LF_EPOCH_OK);
	CHECK_EQ(rstats(&a).pending, 1);
	CHECK_EQ(lf_epoch_poll(&a), 0); /* epoch g0 + 1: not yet */
	CHECK_EQ(o.entry.epoch, g0);    /* stamped by the poll, before it */
	CHECK_EQ(o.freed, 0);
	CHECK_EQ(lf_epoch_poll(&a), 1); /* g0 + 2 */
	CHECK_EQ(o.freed, 1);
	CHECK_EQ(lf_load_u64(&dom.epoch, LF_RELAXED), g0 + 2);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(lf_epoch_poll(&a), 0); /* E4: never again */
	CHECK_EQ(o.freed, 1);
	CHECK_EQ(rstats(&a).pending, 0);
	CHECK_EQ(early, 0);
}

/*
 * E2 and the stall statistics: a participant inside a section holds the
 * epoch at most one past its own; nothing retired after it entered is
 * reclaimed until it leaves, and the stall shows in the statistics.
 */
static void test_stall_is_visible(void)
{
	static struct lf_epoch_record a, b;
	fresh_domain(&a, &b, NULL);
	CHECK_EQ(lf_epoch_enter(&a), LF_EPOCH_OK);
	uint64_t la = rstats(&a).epoch;
	struct obj o[8] = { 0 };
	for (int i = 0; i < 8; i++) {
		CHECK_EQ(lf_epoch_retire(&b, &o[i].entry, obj_free),
			 LF_EPOCH_OK);
		for (int k = 0; k < 10; k++)
			lf_epoch_poll(&b);
		CHECK(lf_load_u64(&dom.epoch, LF_RELAXED) <= la + 1); /* E2 */
	}
	CHECK_EQ(runs, 0);
	struct lf_epoch_stats st;
	lf_epoch_stats(&dom, &st);
	CHECK_EQ(st.participants, 2);
	CHECK_EQ(st.active, 1);
	CHECK_EQ(st.pending, 8);
	CHECK(st.refused >= 70);
	CHECK(st.held_back >= 70); /* a's refusals at its epoch */
	CHECK(rstats(&a).held_back >= 70);
	CHECK_EQ(rstats(&b).held_back, 0);
	CHECK_EQ(rstats(&b).pending, 8);
	CHECK_EQ(lf_epoch_exit(&a), LF_EPOCH_OK);
	CHECK_EQ(rstats(&a).held_back, 0); /* not stalled any more */
	for (int k = 0; k < 3; k++)
		lf_epoch_poll(&b);
	CHECK_EQ(runs, 8);
	CHECK_EQ(early, 0);
	lf_epoch_stats(&dom, &st);
	CHECK_EQ(st.pending, 0);
	CHECK_EQ(st.held_back, 0);
}

/* E5: unregister hands its pending callbacks to the domain; none is lost. */
static void test_unregister_hands_over(void)
{
	static struct lf_epoch_record a, b;
	fresh_domain(&a, &b, NULL);
	CHECK_EQ(lf_epoch_enter(&a), LF_EPOCH_OK);
	struct obj o[5] = { 0 };
	for (int i = 0; i < 5; i++)
		CHECK_EQ(lf_epoch_retire(&b, &o[i].entry, obj_free),
			 LF_EPOCH_OK);
	CHECK_EQ(lf_epoch_unregister(&b), LF_EPOCH_OK);
	struct lf_epoch_stats st;
	lf_epoch_stats(&dom, &st);
	CHECK_EQ(st.orphans, 5);
	CHECK_EQ(st.pending, 5);
	CHECK_EQ(st.participants, 1);
	CHECK_EQ(lf_epoch_exit(&a), LF_EPOCH_OK);
	int ran = 0;
	for (int k = 0; k < 3; k++)
		ran += lf_epoch_poll(&a);
	CHECK_EQ(ran, 5);
	CHECK_EQ(runs, 5);
	CHECK_EQ(early, 0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(o[i].freed, 1);
	lf_epoch_stats(&dom, &st);
	CHECK_EQ(st.orphans, 0);

	/* The record is reused, never freed. */
	CHECK(lf_epoch_recycle(&dom) == &b);
	CHECK(lf_epoch_recycle(&dom) == NULL); /* all in use */
	CHECK(rstats(&b).registered);
	CHECK_EQ(lf_epoch_enter(&b), LF_EPOCH_OK);
	CHECK_EQ(lf_epoch_exit(&b), LF_EPOCH_OK);
}

/* E3 for orphans: one adopted a single epoch after its stamp waits. */
static void test_orphan_grace(void)
{
	static struct lf_epoch_record a, b;
	fresh_domain(&a, &b, NULL);
	struct obj o = { 0 };
	CHECK_EQ(lf_epoch_retire(&b, &o.entry, obj_free), LF_EPOCH_OK);
	uint64_t g0 = lf_load_u64(&dom.epoch, LF_RELAXED);
	CHECK_EQ(lf_epoch_unregister(&b), LF_EPOCH_OK); /* stamped g0 */
	CHECK_EQ(o.entry.epoch, g0);
	CHECK(lf_epoch_try_advance(&dom)); /* g0 + 1 */
	int ran = 0; /* adopted at g0 + 1: it runs only after an advance */
	for (int k = 0; k < 3; k++)
		ran += lf_epoch_poll(&a);
	CHECK_EQ(ran, 1);
	CHECK_EQ(o.freed, 1);
	CHECK_EQ(early, 0);
}

/* A callback that retires another object, through its owner's record. */
static struct lf_epoch_record *chain_rec;
static struct obj chain_next;
static void obj_free_and_retire(struct lf_epoch_entry *e)
{
	obj_free(e);
	CHECK_EQ(lf_epoch_retire(chain_rec, &chain_next.entry, obj_free),
		 LF_EPOCH_OK);
}

/* barrier runs every pending callback of the domain, and what they retire. */
static void test_barrier(void)
{
	static struct lf_epoch_record a, b, c;
	fresh_domain(&a, &b, &c);
	chain_rec = &a;
	chain_next.freed = 0;
	struct obj o[6] = { 0 };
	for (int i = 0; i < 3; i++)
		lf_epoch_retire(&b, &o[i].entry, obj_free);
	for (int i = 3; i < 5; i++)
		lf_epoch_retire(&c, &o[i].entry, obj_free);
	lf_epoch_retire(&a, &o[5].entry, obj_free_and_retire);
	CHECK_EQ(lf_epoch_unregister(&c), LF_EPOCH_OK); /* 2 orphans */
	CHECK_EQ(lf_epoch_barrier(&a), LF_EPOCH_OK);
	CHECK_EQ(runs, 7);
	CHECK_EQ(early, 0);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(o[i].freed, 1);
	CHECK_EQ(chain_next.freed, 1);
	struct lf_epoch_stats st;
	lf_epoch_stats(&dom, &st);
	CHECK_EQ(st.pending, 0);
}

static void test_synchronize(void)
{
	static struct lf_epoch_record a;
	lf_epoch_domain_init(&dom, 1000);
	CHECK_EQ(lf_epoch_register(&dom, &a), LF_EPOCH_OK);
	uint64_t g0 = lf_load_u64(&dom.epoch, LF_RELAXED);
	CHECK_EQ(lf_epoch_synchronize(&a), LF_EPOCH_OK);
	CHECK(lf_load_u64(&dom.epoch, LF_RELAXED) >= g0 + 2);
}

/*
 * E7: retire polls by itself, and advances only in batches. Without a
 * stall a record holds fewer than advance_at + 2 * poll_every entries; the
 * advances are about one per advance_at / 2 retirements, not one per poll.
 */
static void test_auto_poll_bound_with(struct lf_epoch_record *rec,
				      uint64_t advance_at)
{
	static struct obj o[4000];
	struct lf_epoch_record *a = rec; /* zero-filled, never registered */
	const uint64_t n = sizeof(o) / sizeof(o[0]), every = 16;
	lf_epoch_domain_init(&dom, (uint32_t)every);
	if (advance_at != 0)
		lf_epoch_domain_set_advance_at(&dom, advance_at);
	const uint64_t at = dom.advance_at, bound = at + 2 * every;
	CHECK_EQ(lf_epoch_register(&dom, a), LF_EPOCH_OK);
	runs = early = 0;
	uint64_t most = 0;
	for (uint64_t i = 0; i < n; i++) {
		o[i].freed = 0;
		lf_epoch_retire(a, &o[i].entry, obj_free);
		uint64_t p = rstats(a).pending;
		most = p > most ? p : most;
	}
	CHECK(most < bound);
	CHECK(most + 1 >= at); /* it did wait for a batch */
	CHECK((uint64_t)runs + bound > n);
	CHECK_EQ(early, 0);
	struct lf_epoch_stats st;
	lf_epoch_stats(&dom, &st);
	/* Two advances per advance_at retirements at most (one per batch). */
	CHECK(st.advances <= 2 * n / at + 2);
	CHECK(st.advances >= n / bound);
	CHECK_EQ(lf_epoch_barrier(a), LF_EPOCH_OK);
	CHECK_EQ(runs, (int)n);
	for (uint64_t i = 0; i < n; i++)
		CHECK_EQ(o[i].freed, 1);
	CHECK_EQ(lf_epoch_unregister(a), LF_EPOCH_OK);
	printf("E7 bound: advance_at %llu, most pending %llu < %llu, "
	       "%llu advances for %llu retirements\n",
	       (unsigned long long)at, (unsigned long long)most,
	       (unsigned long long)bound, (unsigned long long)st.advances,
	       (unsigned long long)n);
}

static void test_auto_poll_bound(void)
{
	static struct lf_epoch_record a, b, c;
	test_auto_poll_bound_with(&a, 0); /* LF_EPOCH_ADVANCE_POLLS * 16 */
	test_auto_poll_bound_with(&b, 1); /* each poll with a bucket advances */
	test_auto_poll_bound_with(&c, 1000);
}

/* Both modes: the fenced one is chosen on request, and behaves the same. */
static void test_modes(void)
{
	static struct lf_epoch_record a, b;
	lf_epoch_domain_init_mode(&dom, 1000, LF_EPOCH_FENCED);
	CHECK(!lf_epoch_domain_asymmetric(&dom));
	CHECK_EQ(lf_epoch_register(&dom, &a), LF_EPOCH_OK);
	CHECK_EQ(lf_epoch_register(&dom, &b), LF_EPOCH_OK);
	runs = early = 0;
	struct obj o = { 0 };
	CHECK_EQ(lf_epoch_enter(&a), LF_EPOCH_OK);
	CHECK_EQ(lf_epoch_retire(&b, &o.entry, obj_free), LF_EPOCH_OK);
	for (int k = 0; k < 5; k++)
		lf_epoch_poll(&b);
	CHECK_EQ(o.freed, 0); /* a's section holds it back (E2, E3) */
	CHECK_EQ(lf_epoch_exit(&a), LF_EPOCH_OK);
	for (int k = 0; k < 3; k++)
		lf_epoch_poll(&b);
	CHECK_EQ(o.freed, 1);
	CHECK_EQ(early, 0);
	/* AUTO follows the platform: membarrier here unless TSan or asked. */
	lf_epoch_domain_init_mode(&dom, 1000, LF_EPOCH_AUTO);
	CHECK(lf_epoch_domain_asymmetric(&dom) ==
	      lf_platform_heavy_barrier_init());
}

/*
 * Retire while a barrier holds the record's lists (simulated by its lock):
 * the entry goes to the spill list, poll leaves the lists alone and does
 * not wait, and the entry is neither lost nor run early.
 */
static void test_spill(void)
{
	static struct lf_epoch_record a;
	fresh_domain(&a, NULL, NULL);
	struct obj o[3] = { 0 };
	CHECK_EQ(lf_epoch_retire(&a, &o[0].entry, obj_free), LF_EPOCH_OK);
	lf_store_u32(&a.lock, 1, LF_RELAXED);
	CHECK_EQ(lf_epoch_retire(&a, &o[1].entry, obj_free), LF_EPOCH_OK);
	CHECK_EQ(lf_epoch_retire(&a, &o[2].entry, obj_free), LF_EPOCH_OK);
	CHECK_EQ(lf_load_u64(&a.nspill, LF_RELAXED), 2);
	CHECK_EQ(rstats(&a).pending, 3);
	for (int k = 0; k < 4; k++)
		CHECK_EQ(lf_epoch_poll(&a), 0); /* locked: lists untouched */
	CHECK_EQ(a.nfresh, 1);
	CHECK_EQ(lf_load_u32(&a.own, LF_RELAXED), 0);
	lf_store_u32(&a.lock, 0, LF_RELAXED);
	int ran = 0;
	for (int k = 0; k < 3; k++)
		ran += lf_epoch_poll(&a);
	CHECK_EQ(ran, 3);
	CHECK_EQ(early, 0);
	CHECK_EQ(rstats(&a).pending, 0);
	CHECK_EQ(lf_load_u64(&a.nspill, LF_RELAXED), 0);
}

/* A callback may not wait for others: synchronize/barrier say EBUSY. */
static struct lf_epoch_record *busy_rec;
static int busy_sync, busy_barrier;
static void obj_free_busy(struct lf_epoch_entry *e)
{
	obj_free(e);
	busy_sync = lf_epoch_synchronize(busy_rec);
	busy_barrier = lf_epoch_barrier(busy_rec);
}

static void test_callback_busy(void)
{
	static struct lf_epoch_record a;
	lf_epoch_domain_init(&dom, 1000);
	CHECK_EQ(lf_epoch_register(&dom, &a), LF_EPOCH_OK);
	busy_rec = &a;
	struct obj o = { 0 };
	CHECK_EQ(lf_epoch_retire(&a, &o.entry, obj_free_busy), LF_EPOCH_OK);
	CHECK_EQ(lf_epoch_barrier(&a), LF_EPOCH_OK);
	CHECK_EQ(o.freed, 1);
	CHECK_EQ(busy_sync, LF_EPOCH_EBUSY);
	CHECK_EQ(busy_barrier, LF_EPOCH_EBUSY);
	CHECK_EQ(lf_epoch_barrier(&a), LF_EPOCH_OK); /* not left locked */
}

int main(void)
{
	test_modes();
	test_spill();
	test_callback_busy();
	test_orphan_grace();
	test_bad_input();
	test_nesting();
	test_grace_period();
	test_stall_is_visible();
	test_unregister_hands_over();
	test_barrier();
	test_synchronize();
	test_auto_poll_bound();
	return check_exit("test_epoch");
}
