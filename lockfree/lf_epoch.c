/*
 * lf_epoch.c: epoch-based reclamation; the invariants E1-E7 (E7: the
 * pending memory bound) and the full ordering argument are in
 * docs/design.md 1.4 (the code cites them by number; what follows is what
 * the code needs).
 *
 * Lists. A record's fresh list and buckets are plain singly linked chains
 * with a tail, worked on only by whoever holds the record (the owner with
 * own = 1, or the barrier with lock = 1 that saw own == 0). Two lists are
 * Treiber lists with push (CAS, release) and take-everything (exchange):
 * a record's spill list (retirements made while a barrier held the record)
 * and the domain's orphan list (handed over by unregister). Push is ABA-safe
 * by itself (its CAS only needs the head to equal the entry's next at that
 * instant) and take-all has no ABA window, so plain pointers suffice.
 *
 * Ordering of the grace period. A reclaimer runs an entry stamped e only
 * after reading a global epoch >= e + 2 (acquire). That value was written by
 * a seq_cst CAS in lf_epoch_try_advance() after a scan that read every
 * active participant's state (acquire; seq_cst in the fenced mode, after the
 * heavy barrier in the asymmetric one); each such load that read a release
 * store of lf_epoch_exit() makes the section's reads happen-before the
 * advance and, through the release sequence of the CAS chain on the epoch
 * word, before the callback. An announcement and the section's loads form,
 * with the advancer's epoch read and scan, a Dekker pair: the reader's
 * seq_cst fence (fenced) or the advancer's heavy barrier (asymmetric) makes
 * one side see the other's store.
 *
 * Stamping. The stamp must be read after the caller's unlink is visible to
 * others (a stale, smaller stamp could free too early). retire does not
 * read the epoch at all; the poll that files fresh entries runs a seq_cst
 * fence, then a seq_cst load of the epoch, and stamps them all with it
 * (later than at retirement: only a delay). synchronize and barrier do the
 * same before they read the epoch they wait from.
 *
 * Advancing in batches (E7). An advance costs a heavy barrier (a system
 * call that interrupts every CPU running the process, or an IPI to every
 * CPU), against a few nanoseconds for a retire. retire()'s polls advance
 * only once the record holds advance_at stamped entries, and an advance is
 * needed anyway to reclaim them; what fewer advances cost is memory, which
 * E7 bounds. Skipping an advance is always safe: it only delays. Skipping
 * the heavy barrier is not, unless no advance follows: try_advance returns
 * without the barrier only when the epoch already moved from the g it read
 * (its CAS would fail), never to advance without it.
 */
#include "lf_epoch.h"

static inline struct lf_epoch_entry *lf_epoch_as_entry(void *p)
{
	return (struct lf_epoch_entry *)p;
}

/* A chain of entries being moved, with its tail and length. */
struct lf_epoch_chain {
	struct lf_epoch_entry *head, *tail;
	uint64_t n;
};

static void lf_epoch_chain_add(struct lf_epoch_chain *c,
			       struct lf_epoch_entry *head,
			       struct lf_epoch_entry *tail, uint64_t n)
{
	if (head == NULL)
		return;
	tail->next = c->head;
	if (c->head == NULL)
		c->tail = tail;
	c->head = head;
	c->n += n;
}

/* Push a chain onto a Treiber list (spill or orphans). */
static void lf_epoch_list_put(lf_atomic_ptr *list, lf_atomic_u64 *count,
			      const struct lf_epoch_chain *c)
{
	if (c->head == NULL)
		return;
	/* Relaxed: counted before the entries become takeable. */
	lf_fetch_add_u64(count, c->n, LF_RELAXED);
	/* Relaxed: the CAS below re-checks it. */
	void *head = lf_load_ptr(list, LF_RELAXED);
	do {
		c->tail->next = lf_epoch_as_entry(head);
		/* Release: pairs with the acquire in lf_epoch_list_take(). */
	} while (!lf_cas_ptr(list, &head, c->head, LF_RELEASE));
}

/*
 * Take a whole Treiber list (E4). Walks what it took (to find the tail and
 * count): only spill and orphan lists, which are short and rare.
 */
static struct lf_epoch_chain lf_epoch_list_take(lf_atomic_ptr *list,
						lf_atomic_u64 *count)
{
	struct lf_epoch_chain c = { NULL, NULL, 0 };
	/* Relaxed: a hint; the exchange decides. */
	if (lf_load_ptr(list, LF_RELAXED) == NULL)
		return c;
	/*
	 * Acq_rel: acquire pairs with the release CAS in lf_epoch_list_put();
	 * release makes a barrier's later take of the same list synchronize
	 * with this one (E6: an orphan adopter is seen by the barrier).
	 */
	c.head = lf_epoch_as_entry(lf_xchg_ptr(list, NULL, LF_ACQ_REL));
	for (struct lf_epoch_entry *e = c.head; e != NULL; e = e->next) {
		c.tail = e;
		c.n++;
	}
	if (c.n != 0) {
		/* Relaxed: a statistic; it never drops below the truth. */
		lf_fetch_sub_u64(count, c.n, LF_RELAXED);
	}
	return c;
}

/* The owner's calls need a registered record. */
static bool lf_epoch_registered(struct lf_epoch_record *rec)
{
	/* Relaxed: only the owner changes its own in_use from 1. */
	return rec->domain != NULL &&
	       lf_load_u32(&rec->in_use, LF_RELAXED) != 0;
}

/* synchronize, barrier, unregister wait: not in a section or a callback. */
static int lf_epoch_check_idle(struct lf_epoch_record *rec)
{
	if (!lf_epoch_registered(rec))
		return LF_EPOCH_ENOTREG;
	return rec->nest != 0 || rec->polling ? LF_EPOCH_EBUSY : LF_EPOCH_OK;
}

/* The count of a record's fresh and bucketed entries, for statistics. */
static void lf_epoch_count(struct lf_epoch_record *rec)
{
	uint64_t n = rec->nfresh;
	for (unsigned i = 0; i < LF_EPOCH_NBUCKETS; i++)
		n += rec->bucket[i].n;
	/* Relaxed: a statistic, written by the record's holder only. */
	lf_store_u64(&rec->npending, n, LF_RELAXED);
}

/*
 * The owner starts working on its lists; false if a barrier holds them.
 * Nested calls (a callback that retires, run by poll) are already inside.
 */
static bool lf_epoch_own_begin(struct lf_epoch_record *rec)
{
	if (rec->depth != 0) {
		rec->depth++;
		return true;
	}
	/*
	 * Relaxed store, then a compiler barrier (asymmetric: the barrier's
	 * heavy barrier orders it) or a seq_cst fence (fenced), then the
	 * load of lock: of this store and a barrier's store of lock, one is
	 * seen by the other side's later load.
	 */
	lf_store_u32(&rec->own, 1, LF_RELAXED);
	if (rec->asym)
		lf_compiler_barrier();
	else
		lf_fence_seq_cst();
	/* Acquire: pairs with the release that unlocks in the barrier. */
	if (lf_load_u32(&rec->lock, LF_ACQUIRE) != 0) {
		/* Release: pairs with the barrier's acquire wait for 0. */
		lf_store_u32(&rec->own, 0, LF_RELEASE);
		return false;
	}
	rec->depth = 1;
	return true;
}

static void lf_epoch_own_end(struct lf_epoch_record *rec)
{
	LF_ASSERT(rec->depth != 0);
	if (--rec->depth == 0) {
		/* Release: pairs with the barrier's acquire wait for 0. */
		lf_store_u32(&rec->own, 0, LF_RELEASE);
	}
}

static void lf_epoch_unspill(struct lf_epoch_record *rec);

void lf_epoch_domain_init_mode(struct lf_epoch_domain *d, uint32_t poll_every,
			       enum lf_epoch_mode mode)
{
	lf_init_u64(&d->epoch, 0);
	lf_init_ptr(&d->records, NULL);
	lf_init_ptr(&d->orphans, NULL);
	lf_init_u64(&d->norphans, 0);
	lf_init_u32(&d->barrier, 0);
	lf_init_u64(&d->advances, 0);
	lf_init_u64(&d->refused, 0);
	d->poll_every = poll_every != 0 ? poll_every : 1;
	d->advance_at = (uint64_t)LF_EPOCH_ADVANCE_POLLS * d->poll_every;
	d->asym = mode == LF_EPOCH_AUTO && lf_platform_heavy_barrier_init();
}

void lf_epoch_domain_init(struct lf_epoch_domain *d, uint32_t poll_every)
{
#ifdef LF_EPOCH_FORCE_FENCED
	lf_epoch_domain_init_mode(d, poll_every, LF_EPOCH_FENCED);
#else
	lf_epoch_domain_init_mode(d, poll_every, LF_EPOCH_AUTO);
#endif
}

void lf_epoch_domain_set_advance_at(struct lf_epoch_domain *d,
				    uint64_t advance_at)
{
	d->advance_at = advance_at != 0 ? advance_at : 1;
}

bool lf_epoch_domain_asymmetric(const struct lf_epoch_domain *d)
{
	return d->asym;
}

/* Reset what the owner keeps; the lists are empty (or handed over). */
static void lf_epoch_owner_reset(struct lf_epoch_record *rec)
{
	rec->nest = 0;
	rec->since_poll = 0;
	rec->depth = 0;
	rec->polling = false;
}

/* First registration: initialise and link rec into d for good (E5). */
static void lf_epoch_register_first(struct lf_epoch_domain *d,
				    struct lf_epoch_record *rec)
{
	lf_init_u64(&rec->state, 0);
	lf_init_u32(&rec->in_use, 1);
	lf_init_u32(&rec->own, 0);
	lf_init_u32(&rec->lock, 0);
	lf_init_ptr(&rec->spill, NULL);
	lf_init_u64(&rec->nspill, 0);
	lf_init_u64(&rec->npending, 0);
	lf_init_u64(&rec->retired, 0);
	lf_init_u64(&rec->held_state, 0);
	lf_init_u64(&rec->held_count, 0);
	rec->fresh = rec->fresh_tail = NULL;
	rec->nfresh = 0;
	for (unsigned i = 0; i < LF_EPOCH_NBUCKETS; i++)
		rec->bucket[i] = (struct lf_epoch_bucket){ NULL, NULL, 0, 0 };
	lf_epoch_owner_reset(rec);
	/* Relaxed: a hint for poll's advance (only a heavy barrier saved). */
	rec->poll_epoch = lf_load_u64(&d->epoch, LF_RELAXED);
	rec->asym = d->asym;
	rec->domain = d;
	/* Relaxed: the CAS below re-checks it. */
	void *head = lf_load_ptr(&d->records, LF_RELAXED);
	do {
		rec->next = (struct lf_epoch_record *)head;
		/* Release: pairs with the acquire walks of d->records. */
	} while (!lf_cas_ptr(&d->records, &head, rec, LF_RELEASE));
}

int lf_epoch_register(struct lf_epoch_domain *d, struct lf_epoch_record *rec)
{
	if (rec->domain == NULL) {
		lf_epoch_register_first(d, rec);
		return LF_EPOCH_OK;
	}
	if (rec->domain != d)
		return LF_EPOCH_EDOMAIN;
	uint32_t free_ = 0;
	/* Acquire: pairs with the release in lf_epoch_unregister(). */
	if (!lf_cas_u32(&rec->in_use, &free_, 1, LF_ACQUIRE))
		return LF_EPOCH_EALREADY;
	lf_epoch_owner_reset(rec);
	/* Relaxed: a hint for poll's advance (only a heavy barrier saved). */
	rec->poll_epoch = lf_load_u64(&d->epoch, LF_RELAXED);
	return LF_EPOCH_OK;
}

static struct lf_epoch_record *lf_epoch_first(struct lf_epoch_domain *d)
{
	/* Acquire: pairs with the release CAS in lf_epoch_register_first(). */
	return (struct lf_epoch_record *)lf_load_ptr(&d->records, LF_ACQUIRE);
}

struct lf_epoch_record *lf_epoch_recycle(struct lf_epoch_domain *d)
{
	for (struct lf_epoch_record *r = lf_epoch_first(d); r; r = r->next) {
		/* Relaxed: a hint; the CAS decides. */
		if (lf_load_u32(&r->in_use, LF_RELAXED) != 0)
			continue;
		if (lf_epoch_register(d, r) == LF_EPOCH_OK)
			return r;
	}
	return NULL;
}

/* The stamp for fresh entries: a seq_cst fence, then the epoch (E3). */
static uint64_t lf_epoch_stamp(struct lf_epoch_domain *d)
{
	/* Orders the unlinks of everything retired so far before the load. */
	lf_fence_seq_cst();
	/* Seq_cst: in the total order with the advance CAS (E3). */
	return lf_load_u64(&d->epoch, LF_SEQ_CST);
}

/* Everything on rec's fresh list and buckets, as one chain (holder only). */
static struct lf_epoch_chain lf_epoch_take_lists(struct lf_epoch_record *rec,
						 uint64_t stamp)
{
	struct lf_epoch_chain c = { NULL, NULL, 0 };
	for (struct lf_epoch_entry *e = rec->fresh; e != NULL; e = e->next)
		e->epoch = stamp;
	lf_epoch_chain_add(&c, rec->fresh, rec->fresh_tail, rec->nfresh);
	rec->fresh = rec->fresh_tail = NULL;
	rec->nfresh = 0;
	for (unsigned i = 0; i < LF_EPOCH_NBUCKETS; i++) {
		struct lf_epoch_bucket *b = &rec->bucket[i];
		lf_epoch_chain_add(&c, b->head, b->tail, b->n);
		*b = (struct lf_epoch_bucket){ NULL, NULL, 0, 0 };
	}
	return c;
}

int lf_epoch_unregister(struct lf_epoch_record *rec)
{
	int rc = lf_epoch_check_idle(rec);
	if (rc != LF_EPOCH_OK)
		return rc;
	struct lf_epoch_domain *d = rec->domain;
	/* A barrier holds the lists only briefly: wait for it. */
	while (!lf_epoch_own_begin(rec))
		lf_platform_pause();
	lf_epoch_unspill(rec);
	struct lf_epoch_chain c = lf_epoch_take_lists(rec, lf_epoch_stamp(d));
	lf_epoch_list_put(&d->orphans, &d->norphans, &c);
	lf_epoch_count(rec);
	lf_epoch_own_end(rec);
	/* Release: pairs with the acquire CAS in lf_epoch_register(). */
	lf_store_u32(&rec->in_use, 0, LF_RELEASE);
	return LF_EPOCH_OK;
}

/* Count a refused advance against the participant whose state was s. */
static void lf_epoch_note_refusal(struct lf_epoch_record *r, uint64_t s)
{
	/*
	 * Relaxed: statistics. Two advancers racing here can lose a count;
	 * the stall stays visible.
	 */
	if (lf_load_u64(&r->held_state, LF_RELAXED) == s) {
		lf_fetch_add_u64(&r->held_count, 1, LF_RELAXED);
	} else {
		lf_store_u64(&r->held_state, s, LF_RELAXED);
		lf_store_u64(&r->held_count, 1, LF_RELAXED);
	}
	/* Relaxed: a statistic. */
	lf_fetch_add_u64(&r->domain->refused, 1, LF_RELAXED);
}

/* Is every participant outside a section or inside one entered at g? */
static bool lf_epoch_scan(struct lf_epoch_domain *d, uint64_t g, lf_order o)
{
	for (struct lf_epoch_record *r = lf_epoch_first(d); r; r = r->next) {
		/*
		 * Acquire (seq_cst when fenced): pairs with the release store
		 * in lf_epoch_exit() and, as a Dekker pair, with the
		 * announcement in lf_epoch_enter().
		 */
		uint64_t s = lf_load_u64(&r->state, o);
		if ((s & LF_EPOCH_ACTIVE) && lf_epoch_state_epoch(s) != g) {
			lf_epoch_note_refusal(r, s);
			return false;
		}
	}
	return true;
}

bool lf_epoch_try_advance(struct lf_epoch_domain *d)
{
	/* Seq_cst: in the total order with the fenced announcements (E1). */
	uint64_t g = lf_load_u64(&d->epoch, LF_SEQ_CST);
	if (d->asym) {
		/*
		 * A cheap scan first: a participant seen in an older section
		 * refuses the advance without the heavy barrier's cost.
		 */
		if (!lf_epoch_scan(d, g, LF_RELAXED))
			return false;
		/*
		 * Relaxed: if another advancer moved the epoch from g
		 * meanwhile, our CAS would fail: that advance, with its own
		 * heavy barrier, serves us (E7). The caller's acquire load of
		 * the epoch pairs with that advancer's CAS.
		 */
		if (lf_load_u64(&d->epoch, LF_RELAXED) != g)
			return true;
		/*
		 * The heavy barrier: every reader has run a full barrier since
		 * we read g, so an announcement made before it is visible to
		 * the scan below, and a section that announces after it reads
		 * everything stored before g was read (docs/design.md).
		 */
		lf_platform_heavy_barrier();
		if (!lf_epoch_scan(d, g, LF_ACQUIRE))
			return false;
	} else if (!lf_epoch_scan(d, g, LF_SEQ_CST)) {
		return false;
	}
	/*
	 * Seq_cst: releases the scan's acquisitions to every reclaimer that
	 * reads this value or a later one (release sequence of the RMW chain).
	 * Failure means another advancer moved it from g: progress all the
	 * same.
	 */
	if (lf_cas_u64(&d->epoch, &g, g + 1, LF_SEQ_CST)) {
		/* Relaxed: a statistic. */
		lf_fetch_add_u64(&d->advances, 1, LF_RELAXED);
	}
	return true;
}

/* Run a chain's callbacks; a callback may free its entry: next first. */
static int lf_epoch_run_chain(struct lf_epoch_entry *e)
{
	int ran = 0;
	while (e != NULL) {
		struct lf_epoch_entry *next = e->next;
		e->fn(e);
		ran++;
		e = next;
	}
	return ran;
}

/* File a chain of entries stamped `epoch` into rec's bucket for it. */
static void lf_epoch_file(struct lf_epoch_record *rec, uint64_t epoch,
			  struct lf_epoch_entry *head,
			  struct lf_epoch_entry *tail, uint64_t n)
{
	struct lf_epoch_bucket *b = &rec->bucket[epoch % LF_EPOCH_NBUCKETS];
	/* Only epochs g - 1 and g are left once the ready ones have run. */
	LF_ASSERT(b->n == 0 || b->epoch == epoch);
	if (b->n == 0) {
		b->head = NULL;
		b->epoch = epoch;
	}
	tail->next = b->head;
	if (b->head == NULL)
		b->tail = tail;
	b->head = head;
	b->n += n;
}

/* Detach the buckets ready at g (stamp + 2 <= g) onto a chain. */
static void lf_epoch_detach_ready(struct lf_epoch_record *rec, uint64_t g,
				  struct lf_epoch_chain *ready)
{
	for (unsigned i = 0; i < LF_EPOCH_NBUCKETS; i++) {
		struct lf_epoch_bucket *b = &rec->bucket[i];
		if (b->n != 0 && b->epoch + 2 <= g) {
			lf_epoch_chain_add(ready, b->head, b->tail, b->n);
			*b = (struct lf_epoch_bucket){ NULL, NULL, 0, 0 };
		}
	}
}

/*
 * Adopt orphans (E5), taken before g was read, so stamped <= g: the ready
 * ones join `ready`, the others (g - 1, g) are filed.
 */
static void lf_epoch_adopt(struct lf_epoch_record *rec, uint64_t g,
			   struct lf_epoch_entry *e,
			   struct lf_epoch_chain *ready)
{
	while (e != NULL) {
		struct lf_epoch_entry *next = e->next;
		LF_ASSERT(e->epoch <= g);
		if (e->epoch + 2 <= g)
			lf_epoch_chain_add(ready, e, e, 1);
		else
			lf_epoch_file(rec, e->epoch, e, e, 1);
		e = next;
	}
}

/* Move the spill list (retired while locked) onto the fresh list. */
static void lf_epoch_unspill(struct lf_epoch_record *rec)
{
	struct lf_epoch_chain c = lf_epoch_list_take(&rec->spill, &rec->nspill);
	if (c.head == NULL)
		return;
	c.tail->next = rec->fresh;
	if (rec->fresh == NULL)
		rec->fresh_tail = c.tail;
	rec->fresh = c.head;
	rec->nfresh += c.n;
}

/* Stamp the fresh entries g and file them (after the ready ones left). */
static void lf_epoch_file_fresh(struct lf_epoch_record *rec, uint64_t g)
{
	if (rec->fresh == NULL)
		return;
	for (struct lf_epoch_entry *e = rec->fresh; e != NULL; e = e->next)
		e->epoch = g;
	lf_epoch_file(rec, g, rec->fresh, rec->fresh_tail, rec->nfresh);
	rec->fresh = rec->fresh_tail = NULL;
	rec->nfresh = 0;
}

/* Would one more advance make a bucket ready (stamp g - 1)? */
static bool lf_epoch_one_short(const struct lf_epoch_record *rec, uint64_t g)
{
	for (unsigned i = 0; i < LF_EPOCH_NBUCKETS; i++)
		if (rec->bucket[i].n != 0 && rec->bucket[i].epoch + 1 == g)
			return true;
	return false;
}

/* Entries in rec's buckets (stamped), once the fresh ones are filed. */
static uint64_t lf_epoch_stamped(const struct lf_epoch_record *rec)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < LF_EPOCH_NBUCKETS; i++)
		n += rec->bucket[i].n;
	return n;
}

/*
 * Is an advance worth its heavy barrier now (E7)? From advance_at stamped
 * entries always: the bound needs it. Below that, only for an explicit
 * poll (from_retire false) with a bucket waiting, unless another
 * participant moved the epoch since our last poll and no bucket of ours
 * would be ready after one more advance: the others are advancing anyway.
 */
static bool lf_epoch_want_advance(const struct lf_epoch_record *rec, uint64_t g,
				  bool moved, bool from_retire)
{
	uint64_t n = lf_epoch_stamped(rec);
	if (n >= rec->domain->advance_at)
		return true;
	return !from_retire && n != 0 && (!moved || lf_epoch_one_short(rec, g));
}

/* Poll with the lists held: file, advance if needed, collect the ready. */
static int lf_epoch_poll_held(struct lf_epoch_record *rec, bool from_retire)
{
	struct lf_epoch_domain *d = rec->domain;
	struct lf_epoch_chain ready = { NULL, NULL, 0 };
	struct lf_epoch_chain orph = { NULL, NULL, 0 };
	/* Relaxed: a hint; the exchange decides. */
	if (lf_load_ptr(&d->orphans, LF_RELAXED) != NULL)
		orph = lf_epoch_list_take(&d->orphans, &d->norphans);
	lf_epoch_unspill(rec);
	uint64_t g = lf_epoch_stamp(d);
	lf_epoch_detach_ready(rec, g, &ready);
	lf_epoch_file_fresh(rec, g);
	lf_epoch_adopt(rec, g, orph.head, &ready);
	bool moved = g != rec->poll_epoch;
	rec->poll_epoch = g;
	if (lf_epoch_want_advance(rec, g, moved, from_retire) &&
	    lf_epoch_try_advance(d)) {
		/* Acquire: pairs with the seq_cst CAS in try_advance(). */
		rec->poll_epoch = lf_load_u64(&d->epoch, LF_ACQUIRE);
		lf_epoch_detach_ready(rec, rec->poll_epoch, &ready);
	}
	lf_epoch_count(rec);
	/* own stays 1 while they run: a barrier waits for them (E6). */
	return lf_epoch_run_chain(ready.head);
}

/* Poll on a registered record: explicit, or retire()'s every poll_every. */
static int lf_epoch_poll_run(struct lf_epoch_record *rec, bool from_retire)
{
	bool was_polling = rec->polling;
	rec->polling = true;
	rec->since_poll = 0;
	int ran = 0;
	if (lf_epoch_own_begin(rec)) {
		ran = lf_epoch_poll_held(rec, from_retire);
		lf_epoch_own_end(rec);
	} else if (!from_retire) {
		/* A barrier holds our lists: help the epoch along only. */
		lf_epoch_try_advance(rec->domain);
	}
	rec->polling = was_polling;
	return ran;
}

int lf_epoch_poll(struct lf_epoch_record *rec)
{
	if (!lf_epoch_registered(rec))
		return LF_EPOCH_ENOTREG;
	return lf_epoch_poll_run(rec, false);
}

int lf_epoch_retire(struct lf_epoch_record *rec, struct lf_epoch_entry *entry,
		    lf_epoch_fn fn)
{
	if (entry == NULL || fn == NULL)
		return LF_EPOCH_EINVAL;
	if (!lf_epoch_registered(rec))
		return LF_EPOCH_ENOTREG;
	entry->fn = fn;
	entry->epoch = 0; /* stamped by the poll that files it */
	/* Relaxed: a statistic; only the owner writes it (no RMW). */
	lf_store_u64(&rec->retired, lf_load_u64(&rec->retired, LF_RELAXED) + 1,
		     LF_RELAXED);
	if (LF_LIKELY(lf_epoch_own_begin(rec))) {
		entry->next = NULL;
		if (rec->fresh_tail != NULL)
			rec->fresh_tail->next = entry;
		else
			rec->fresh = entry;
		rec->fresh_tail = entry;
		rec->nfresh++;
		/* Relaxed: a statistic; the holder of the lists writes it. */
		lf_store_u64(&rec->npending,
			     lf_load_u64(&rec->npending, LF_RELAXED) + 1,
			     LF_RELAXED);
		lf_epoch_own_end(rec);
	} else {
		/* A barrier holds the lists: never wait for it here. */
		struct lf_epoch_chain c = { entry, entry, 1 };
		lf_epoch_list_put(&rec->spill, &rec->nspill, &c);
	}
	if (++rec->since_poll >= rec->domain->poll_every && !rec->polling)
		lf_epoch_poll_run(rec, true);
	return LF_EPOCH_OK;
}

/* Wait until the global epoch is at least target. */
static void lf_epoch_wait(struct lf_epoch_domain *d, uint64_t target)
{
	/* Acquire: pairs with the seq_cst CAS in lf_epoch_try_advance(). */
	while (lf_load_u64(&d->epoch, LF_ACQUIRE) < target) {
		if (!lf_epoch_try_advance(d))
			lf_platform_pause();
	}
}

int lf_epoch_synchronize(struct lf_epoch_record *rec)
{
	int rc = lf_epoch_check_idle(rec);
	if (rc != LF_EPOCH_OK)
		return rc;
	/* As when stamping: the caller's unlink comes before the load. */
	uint64_t g0 = lf_epoch_stamp(rec->domain);
	lf_epoch_wait(rec->domain, g0 + 2);
	return LF_EPOCH_OK;
}

/*
 * The barrier's collection from the records [from, to): lock them all, one
 * heavy barrier (or fence), wait until no owner is at its lists (nor runs
 * callbacks of a poll), take the orphans if asked while all are held, take
 * every list, unlock.
 */
static void lf_epoch_collect(struct lf_epoch_domain *d,
			     struct lf_epoch_record *from,
			     struct lf_epoch_record *to, bool orphans,
			     struct lf_epoch_chain *all)
{
	for (struct lf_epoch_record *r = from; r != to; r = r->next) {
		/* Relaxed: barriers run one at a time; the barrier (or
		 * fence) below orders it before the loads of own. */
		lf_store_u32(&r->lock, 1, LF_RELAXED);
	}
	if (d->asym)
		lf_platform_heavy_barrier();
	else
		lf_fence_seq_cst();
	for (struct lf_epoch_record *r = from; r != to; r = r->next) {
		/* Acquire: pairs with the release in lf_epoch_own_end(). */
		while (lf_load_u32(&r->own, LF_ACQUIRE) != 0)
			lf_platform_pause();
	}
	if (orphans) {
		struct lf_epoch_chain c =
			lf_epoch_list_take(&d->orphans, &d->norphans);
		lf_epoch_chain_add(all, c.head, c.tail, c.n);
	}
	for (struct lf_epoch_record *r = from; r != to; r = r->next) {
		struct lf_epoch_chain c =
			lf_epoch_list_take(&r->spill, &r->nspill);
		lf_epoch_chain_add(all, c.head, c.tail, c.n);
		c = lf_epoch_take_lists(r, 0); /* fresh: the barrier waits */
		lf_epoch_chain_add(all, c.head, c.tail, c.n);
		lf_epoch_count(r);
		/* Release: pairs with the acquire in lf_epoch_own_begin(). */
		lf_store_u32(&r->lock, 0, LF_RELEASE);
	}
}

/* Take what the callbacks just run retired on rec (the owner's way). */
static struct lf_epoch_entry *lf_epoch_take_own(struct lf_epoch_record *rec)
{
	struct lf_epoch_chain c = { NULL, NULL, 0 };
	if (lf_epoch_own_begin(rec)) {
		lf_epoch_unspill(rec);
		c = lf_epoch_take_lists(rec, 0);
		lf_epoch_count(rec);
		lf_epoch_own_end(rec);
	}
	return c.head;
}

int lf_epoch_barrier(struct lf_epoch_record *rec)
{
	int rc = lf_epoch_check_idle(rec);
	if (rc != LF_EPOCH_OK)
		return rc;
	struct lf_epoch_domain *d = rec->domain;
	rec->polling = true;
	/*
	 * One barrier at a time: a second one waits until the first has run
	 * what it took (E6). Acquire: pairs with the release below.
	 */
	uint32_t free_ = 0;
	while (!lf_cas_u32(&d->barrier, &free_, 1, LF_ACQUIRE)) {
		free_ = 0;
		lf_platform_pause();
	}
	/*
	 * Every record, then those registered meanwhile (one of them may have
	 * adopted orphans before we took them); later ones start empty.
	 */
	struct lf_epoch_chain all = { NULL, NULL, 0 };
	struct lf_epoch_record *first = lf_epoch_first(d);
	lf_epoch_collect(d, first, NULL, true, &all);
	struct lf_epoch_record *newer = lf_epoch_first(d);
	if (newer != first)
		lf_epoch_collect(d, newer, first, false, &all);
	/*
	 * Every entry taken was retired before synchronize reads g0, and its
	 * unlink happened before our take (own's release, our acquire), so
	 * g0 + 2 is a grace period for all of them (E3). Then only what those
	 * callbacks retire on this record: entries other participants retire
	 * meanwhile are theirs to poll, or waiting could never end.
	 */
	struct lf_epoch_entry *e = all.head;
	while (e != NULL) {
		rec->polling = false;
		rc = lf_epoch_synchronize(rec);
		LF_ASSERT(rc == LF_EPOCH_OK);
		rec->polling = true;
		lf_epoch_run_chain(e);
		e = lf_epoch_take_own(rec);
	}
	/* Release: pairs with the acquire CAS of the next barrier. */
	lf_store_u32(&d->barrier, 0, LF_RELEASE);
	rec->polling = false;
	return LF_EPOCH_OK;
}

void lf_epoch_record_stats(struct lf_epoch_record *rec,
			   struct lf_epoch_record_stats *out)
{
	/* Relaxed throughout: a snapshot of counters, ordering nothing. */
	uint64_t s = lf_load_u64(&rec->state, LF_RELAXED);
	out->registered = lf_load_u32(&rec->in_use, LF_RELAXED) != 0;
	out->active = (s & LF_EPOCH_ACTIVE) != 0;
	out->epoch = out->active ? lf_epoch_state_epoch(s) : 0;
	out->held_back = 0;
	if (out->active && lf_load_u64(&rec->held_state, LF_RELAXED) == s)
		out->held_back = lf_load_u64(&rec->held_count, LF_RELAXED);
	out->pending = lf_load_u64(&rec->npending, LF_RELAXED) +
		       lf_load_u64(&rec->nspill, LF_RELAXED);
	out->retired = lf_load_u64(&rec->retired, LF_RELAXED);
}

void lf_epoch_stats(struct lf_epoch_domain *d, struct lf_epoch_stats *out)
{
	*out = (struct lf_epoch_stats){ 0 };
	/* Relaxed throughout: a snapshot of counters, ordering nothing. */
	out->epoch = lf_load_u64(&d->epoch, LF_RELAXED);
	out->orphans = lf_load_u64(&d->norphans, LF_RELAXED);
	out->pending = out->orphans;
	out->advances = lf_load_u64(&d->advances, LF_RELAXED);
	out->refused = lf_load_u64(&d->refused, LF_RELAXED);
	for (struct lf_epoch_record *r = lf_epoch_first(d); r; r = r->next) {
		struct lf_epoch_record_stats rs;
		lf_epoch_record_stats(r, &rs);
		out->participants += rs.registered;
		out->active += rs.active;
		out->pending += rs.pending;
		if (rs.held_back > out->held_back)
			out->held_back = rs.held_back;
	}
}
