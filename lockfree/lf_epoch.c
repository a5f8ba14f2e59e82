/*
 * lf_epoch.c: epoch-based reclamation; the invariants E1-E5 and the pending
 * memory bound are in lf_epoch.h, the full argument in docs/design.md.
 *
 * Lists. A record's pending list and the domain's orphan list are Treiber
 * lists of entries with two operations only: push (CAS, release) and take
 * everything (exchange with NULL, acquire). Push is ABA-safe by itself (its
 * CAS only needs the head to equal the entry's next at that instant), and
 * take-all has no ABA window, so plain pointers suffice. Whoever takes a list
 * owns its entries (E4); unready entries are pushed back as one chain.
 *
 * Ordering of the grace period. A reclaimer runs an entry stamped e only
 * after reading a global epoch >= e + 2 (acquire). That value was written by
 * a seq_cst CAS in lf_epoch_try_advance() after a scan that read every active
 * participant's state with seq_cst loads; each such load that read a release
 * store of lf_epoch_exit() (or a later seq_cst enter) makes the section's
 * reads happen-before the advance, and, through the release sequence of the
 * CAS chain on the epoch word, before the callback.
 *
 * Stamping. retire() must read the epoch after the caller's unlink is
 * visible to others (a stale, smaller stamp could free too early). It first
 * does a seq_cst RMW on the record's own counter, a full barrier on x86-64
 * and AArch64, then a seq_cst load of the epoch. synchronize() does the same
 * before it reads the epoch it waits from.
 */
#include "lf_epoch.h"

static inline struct lf_epoch_entry *lf_epoch_as_entry(void *p)
{
	return (struct lf_epoch_entry *)p;
}

/* Take a whole list (E4); subtracts what was taken from its count. */
static struct lf_epoch_entry *lf_epoch_list_take(lf_atomic_ptr *list,
						 lf_atomic_u64 *count)
{
	/* Acquire: pairs with the release CAS in lf_epoch_list_put(). */
	struct lf_epoch_entry *first =
		lf_epoch_as_entry(lf_xchg_ptr(list, NULL, LF_ACQUIRE));
	uint64_t n = 0;
	for (struct lf_epoch_entry *e = first; e != NULL; e = e->next)
		n++;
	if (n != 0) {
		/* Relaxed: a statistic; it never drops below the truth. */
		lf_fetch_sub_u64(count, n, LF_RELAXED);
	}
	return first;
}

/* Push the chain first..last (n entries) onto a list. */
static void lf_epoch_list_put(lf_atomic_ptr *list, lf_atomic_u64 *count,
			      struct lf_epoch_entry *first,
			      struct lf_epoch_entry *last, uint64_t n)
{
	if (first == NULL)
		return;
	/* Relaxed: counted before the entries become takeable. */
	lf_fetch_add_u64(count, n, LF_RELAXED);
	/* Relaxed: the CAS below re-checks it. */
	void *head = lf_load_ptr(list, LF_RELAXED);
	do {
		last->next = lf_epoch_as_entry(head);
		/* Release: pairs with the acquire in lf_epoch_list_take(). */
	} while (!lf_cas_ptr(list, &head, first, LF_RELEASE));
}

/* The owner's calls need a registered record. */
static bool lf_epoch_registered(struct lf_epoch_record *rec)
{
	/* Relaxed: only the owner changes its own in_use from 1. */
	return rec->domain != NULL &&
	       lf_load_u32(&rec->in_use, LF_RELAXED) != 0;
}

/* synchronize and barrier wait for others: not from inside a section. */
static int lf_epoch_check_idle(struct lf_epoch_record *rec)
{
	if (!lf_epoch_registered(rec))
		return LF_EPOCH_ENOTREG;
	return rec->nest != 0 ? LF_EPOCH_EBUSY : LF_EPOCH_OK;
}

void lf_epoch_domain_init(struct lf_epoch_domain *d, uint32_t poll_every)
{
	lf_init_u64(&d->epoch, 0);
	lf_init_ptr(&d->records, NULL);
	lf_init_ptr(&d->orphans, NULL);
	lf_init_u64(&d->norphans, 0);
	lf_init_u64(&d->advances, 0);
	lf_init_u64(&d->refused, 0);
	d->poll_every = poll_every != 0 ? poll_every : 1;
}

/* First registration: initialise and link rec into d for good (E5). */
static void lf_epoch_register_first(struct lf_epoch_domain *d,
				    struct lf_epoch_record *rec)
{
	lf_init_u64(&rec->state, 0);
	lf_init_u32(&rec->in_use, 1);
	lf_init_ptr(&rec->pending, NULL);
	lf_init_u64(&rec->npending, 0);
	lf_init_u64(&rec->retired, 0);
	lf_init_u64(&rec->syncs, 0);
	lf_init_u64(&rec->held_state, 0);
	lf_init_u64(&rec->held_count, 0);
	rec->nest = 0;
	rec->since_poll = 0;
	rec->polling = false;
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
	rec->nest = 0;
	rec->since_poll = 0;
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

int lf_epoch_unregister(struct lf_epoch_record *rec)
{
	int rc = lf_epoch_check_idle(rec);
	if (rc != LF_EPOCH_OK)
		return rc;
	struct lf_epoch_domain *d = rec->domain;
	struct lf_epoch_entry *first = lf_epoch_list_take(&rec->pending,
							  &rec->npending);
	struct lf_epoch_entry *last = first;
	uint64_t n = first != NULL;
	while (last != NULL && last->next != NULL) {
		last = last->next;
		n++;
	}
	lf_epoch_list_put(&d->orphans, &d->norphans, first, last, n);
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
}

bool lf_epoch_try_advance(struct lf_epoch_domain *d)
{
	/* Seq_cst: in the total order with enter's announcement (E1). */
	uint64_t g = lf_load_u64(&d->epoch, LF_SEQ_CST);
	for (struct lf_epoch_record *r = lf_epoch_first(d); r; r = r->next) {
		/*
		 * Seq_cst (so acquire): pairs with the seq_cst store in
		 * lf_epoch_enter() and the release store in lf_epoch_exit().
		 */
		uint64_t s = lf_load_u64(&r->state, LF_SEQ_CST);
		if ((s & LF_EPOCH_ACTIVE) && lf_epoch_state_epoch(s) != g) {
			lf_epoch_note_refusal(r, s);
			/* Relaxed: a statistic. */
			lf_fetch_add_u64(&d->refused, 1, LF_RELAXED);
			return false;
		}
	}
	/*
	 * Seq_cst: releases the scan's acquisitions to every reclaimer that
	 * reads this value or a later one (release sequence of the RMW chain).
	 * Failure means another advancer moved it from g: progress all the same.
	 */
	if (lf_cas_u64(&d->epoch, &g, g + 1, LF_SEQ_CST)) {
		/* Relaxed: a statistic. */
		lf_fetch_add_u64(&d->advances, 1, LF_RELAXED);
	}
	return true;
}

/*
 * Run the entries of a chain that are ready at epoch g; push the others back
 * onto list. Returns how many ran. A callback may free the entry, so its
 * next is read first; a callback may retire, which pushes onto a list that
 * this chain is no longer part of.
 */
static int lf_epoch_run_ready(struct lf_epoch_entry *e, uint64_t g,
			      lf_atomic_ptr *list, lf_atomic_u64 *count)
{
	struct lf_epoch_entry *keep = NULL, *keep_last = NULL;
	uint64_t nkeep = 0;
	int ran = 0;
	while (e != NULL) {
		struct lf_epoch_entry *next = e->next;
		if (e->epoch + 2 <= g) {
			e->fn(e);
			ran++;
		} else {
			e->next = keep;
			if (keep == NULL)
				keep_last = e;
			keep = e;
			nkeep++;
		}
		e = next;
	}
	lf_epoch_list_put(list, count, keep, keep_last, nkeep);
	return ran;
}

int lf_epoch_poll(struct lf_epoch_record *rec)
{
	if (!lf_epoch_registered(rec))
		return LF_EPOCH_ENOTREG;
	struct lf_epoch_domain *d = rec->domain;
	bool was_polling = rec->polling;
	rec->polling = true;
	rec->since_poll = 0;
	lf_epoch_try_advance(d);
	/* Acquire: pairs with the seq_cst CAS in lf_epoch_try_advance(). */
	uint64_t g = lf_load_u64(&d->epoch, LF_ACQUIRE);
	int ran = lf_epoch_run_ready(lf_epoch_list_take(&rec->pending,
							&rec->npending),
				     g, &rec->pending, &rec->npending);
	/* Relaxed: a hint; list_take decides. */
	if (lf_load_ptr(&d->orphans, LF_RELAXED) != NULL)
		ran += lf_epoch_run_ready(lf_epoch_list_take(&d->orphans,
							     &d->norphans),
					  g, &d->orphans, &d->norphans);
	rec->polling = was_polling;
	return ran;
}

int lf_epoch_retire(struct lf_epoch_record *rec, struct lf_epoch_entry *entry,
		    lf_epoch_fn fn)
{
	if (entry == NULL || fn == NULL)
		return LF_EPOCH_EINVAL;
	if (!lf_epoch_registered(rec))
		return LF_EPOCH_ENOTREG;
	/*
	 * Seq_cst RMW: orders the caller's unlink before the epoch load below
	 * (store-load), see "Stamping" above; also counts retirements.
	 */
	lf_fetch_add_u64(&rec->retired, 1, LF_SEQ_CST);
	/* Seq_cst: in the total order with the advance CAS (E3). */
	entry->epoch = lf_load_u64(&rec->domain->epoch, LF_SEQ_CST);
	entry->fn = fn;
	lf_epoch_list_put(&rec->pending, &rec->npending, entry, entry, 1);
	if (++rec->since_poll >= rec->domain->poll_every && !rec->polling)
		lf_epoch_poll(rec);
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
	/* Seq_cst RMW: as in retire, the caller's unlink comes first. */
	lf_fetch_add_u64(&rec->syncs, 1, LF_SEQ_CST);
	/* Seq_cst: in the total order with the advance CAS (E2). */
	uint64_t g0 = lf_load_u64(&rec->domain->epoch, LF_SEQ_CST);
	lf_epoch_wait(rec->domain, g0 + 2);
	return LF_EPOCH_OK;
}

/* Take every list of the domain into one chain (E4). */
static struct lf_epoch_entry *lf_epoch_take_everything(struct lf_epoch_domain *d)
{
	struct lf_epoch_entry *all = lf_epoch_list_take(&d->orphans,
							&d->norphans);
	for (struct lf_epoch_record *r = lf_epoch_first(d); r; r = r->next) {
		struct lf_epoch_entry *e = lf_epoch_list_take(&r->pending,
							      &r->npending);
		while (e != NULL) {
			struct lf_epoch_entry *next = e->next;
			e->next = all;
			all = e;
			e = next;
		}
	}
	return all;
}

int lf_epoch_barrier(struct lf_epoch_record *rec)
{
	int rc = lf_epoch_check_idle(rec);
	if (rc != LF_EPOCH_OK)
		return rc;
	bool was_polling = rec->polling;
	rec->polling = true;
	/*
	 * One sweep of the whole domain takes every callback pending now;
	 * then only what those callbacks retire on this record (the caller's
	 * CPU). Entries other participants retire meanwhile are theirs to
	 * poll: waiting for them too could never end under steady retirement.
	 */
	struct lf_epoch_entry *all = lf_epoch_take_everything(rec->domain);
	while (all != NULL) {
		/*
		 * Every entry taken was stamped before synchronize reads g0,
		 * so e + 2 <= g0 + 2 once it returns (E3). It cannot fail: the
		 * record was checked idle above and no callback changes that.
		 */
		rc = lf_epoch_synchronize(rec);
		LF_ASSERT(rc == LF_EPOCH_OK);
		while (all != NULL) {
			struct lf_epoch_entry *next = all->next;
			all->fn(all);
			all = next;
		}
		all = lf_epoch_list_take(&rec->pending, &rec->npending);
	}
	rec->polling = was_polling;
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
	out->pending = lf_load_u64(&rec->npending, LF_RELAXED);
	out->retired = lf_load_u64(&rec->retired, LF_RELAXED);
}

void lf_epoch_stats(struct lf_epoch_domain *d, struct lf_epoch_stats *out)
{
	*out = (struct lf_epoch_stats){0};
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
