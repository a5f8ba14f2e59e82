/*
 * lf_epoch.h: epoch-based reclamation that needs no allocator.
 *
 * The scheme is Fraser's three-epoch EBR (K. Fraser, "Practical lock-
 * freedom", Cambridge TR-579, 2004), in the shape of Concurrency Kit's
 * ck_epoch: a global epoch; each participant announces the epoch it entered
 * a read-side section in; the epoch advances only when every active
 * participant has announced the current one; an object retired at epoch e is
 * handed to its callback once the global epoch is at least e + 2.
 *
 * Nothing is allocated. A participant's record is memory the caller gives at
 * registration (a static per-CPU array in a kernel); records are linked into
 * the domain once and never unlinked, and a record left by unregister is
 * reused by the next lf_epoch_recycle() or re-registration. A retired object
 * embeds its own struct lf_epoch_entry.
 *
 * The read side is asymmetric where the platform has a heavy barrier
 * (lf_platform.h: membarrier(2) in userspace, an IPI to every CPU in the
 * kernel): enter is a load of the global epoch, a plain (relaxed) store of
 * the announcement and a compiler barrier; exit a release store. The side
 * that advances the epoch pays: it runs the heavy barrier between reading
 * the epoch and scanning the announcements, which pairs with the reader's
 * store as a seq_cst fence after it would. Where there is none (a build
 * under ThreadSanitizer or the model checker's fenced configurations, an
 * old kernel, LF_NO_HEAVY_BARRIER=1, -DLF_EPOCH_FORCE_FENCED at build time),
 * the domain is set up once in the fenced mode: enter puts a seq_cst fence
 * after the announcement store (docs/design.md, "Epoch reclamation").
 *
 * Retirement touches only the retiring participant's record, with no
 * atomic read-modify-write: the entry goes on the record's list of fresh
 * (unstamped) entries. Each poll stamps the fresh entries with the epoch it
 * reads after a seq_cst fence (a later stamp only delays them) and files
 * them in one of three per-epoch buckets; a bucket whose epoch e has
 * e + 2 <= the global epoch is run whole. Poll's cost is what it runs plus
 * a constant: nothing is walked to be counted or pushed back.
 *
 * Who may touch a record's lists: its owner, and a barrier (or unregister's
 * hand-over) of the domain. They exclude each other as the buddy's per-CPU
 * caches do: the owner stores own = 1, then (asymmetric) a compiler barrier
 * or (fenced) a seq_cst fence, then loads lock; a barrier stores lock = 1,
 * runs the heavy barrier (or a fence), then waits for own == 0. The owner
 * keeps own = 1 while its poll runs callbacks, so a barrier also waits for
 * the entries a poll holds in its hands. An owner that finds the lock taken
 * never waits in retire or poll: retire pushes onto the record's spill list
 * (a CAS, only then), poll skips its lists.
 *
 * Synchronization table (rec = a participant's own record):
 *   enter, exit, retire, poll, synchronize, barrier, unregister
 *       only by the owner of rec (the CPU or thread that registered it);
 *       any two owners may call any of them at the same time. A callback
 *       may retire on the record whose poll or barrier runs it; it may not
 *       call synchronize, barrier or unregister (LF_EPOCH_EBUSY).
 *   register, recycle, try_advance, stats
 *       by anyone, at any time.
 *   domain_init
 *       before anything else touches the domain.
 *
 * The invariants E1-E7 (checked by verify/ tests under these numbers),
 * the ordering argument, and the bound on pending memory (E7: below
 * advance_at + 2 * poll_every entries per record while no participant
 * stalls inside a section; a stall is unbounded and lf_epoch_stats() shows
 * it) are in docs/design.md 1.4. In short: retire() polls every
 * poll_every retirements, and such a poll advances the epoch (paying the
 * heavy barrier) only once the record holds advance_at stamped entries
 * (lf_epoch_domain_set_advance_at); an explicit lf_epoch_poll() advances
 * whenever a bucket waits.
 *
 * Example: verify/stress/workload_epoch.c (readers, writers that
 * retire, a callback that recycles); examples/vas_example.c (a vas
 * context is an epoch participant).
 */
#ifndef LF_EPOCH_H
#define LF_EPOCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lf_atomic.h"
#include "lf_platform.h"

enum lf_epoch_err {
	LF_EPOCH_OK = 0,
	LF_EPOCH_ENOTREG = -1,  /* the record is not registered */
	LF_EPOCH_EALREADY = -2, /* register of a record already registered */
	LF_EPOCH_ENOTIN = -3,   /* exit of a section that was not entered */
	LF_EPOCH_EBUSY = -4,    /* inside a section: would wait for itself */
	LF_EPOCH_ENEST = -5,    /* sections nested too deeply */
	LF_EPOCH_EDOMAIN = -6,  /* the record belongs to another domain */
	LF_EPOCH_EINVAL = -7,   /* NULL entry or callback */
};

struct lf_epoch_entry;
typedef void (*lf_epoch_fn)(struct lf_epoch_entry *entry);

/* Embedded in every retired object; owned by the list that holds it. */
struct lf_epoch_entry {
	struct lf_epoch_entry *next; /* owned by the list holding the entry */
	lf_epoch_fn fn;
	uint64_t epoch; /* the global epoch at retirement */
};

struct lf_epoch_domain;

/* Bits of a record's state word. */
#define LF_EPOCH_ACTIVE ((uint64_t)1)
static inline uint64_t lf_epoch_state(uint64_t epoch)
{
	return epoch << 1 | LF_EPOCH_ACTIVE;
}
static inline uint64_t lf_epoch_state_epoch(uint64_t s)
{
	return s >> 1;
}

/* How a domain orders the read side against an advance (set up once). */
enum lf_epoch_mode {
	LF_EPOCH_AUTO = 0, /* asymmetric if the platform has a heavy barrier */
	LF_EPOCH_FENCED = 1, /* a seq_cst fence after each announcement */
};

/* Entries stamped with one epoch, in retirement order. */
struct lf_epoch_bucket {
	struct lf_epoch_entry *head, *tail; /* (l) the record's exclusion */
	uint64_t epoch;                     /* (l) stamp of every entry */
	uint64_t n;                         /* (l) entries */
};

#define LF_EPOCH_NBUCKETS 3

/*
 * A participant. Zero-fill before its first registration (static storage
 * is); after that it belongs to its domain for good. (l) fields are
 * protected by the own/lock exclusion described at the top of this file.
 */
struct lf_epoch_record {
	lf_atomic_u64 state;  /* (a) epoch << 1 | ACTIVE; owner writes */
	uint32_t nest;        /* (o) section depth */
	uint32_t since_poll;  /* (o) retirements since the last poll */
	uint32_t depth;       /* (o) nesting of the owner's list work */
	uint64_t poll_epoch;  /* (o) the epoch our last poll read */
	bool polling;         /* (o) in poll or barrier: no auto-poll */
	bool asym;            /* (i) the domain's mode, for enter */
	lf_atomic_u32 in_use; /* (a) 1 while registered */
	lf_atomic_u32 own;    /* (a) owner at its lists; owner writes */
	lf_atomic_u32 lock;   /* (a) a barrier holds the lists */
	struct lf_epoch_entry *fresh, *fresh_tail; /* (l) not stamped yet */
	uint64_t nfresh;                           /* (l) entries on fresh */
	struct lf_epoch_bucket bucket[LF_EPOCH_NBUCKETS]; /* (l) stamped */
	lf_atomic_ptr spill;    /* (a) retired while locked: push / take-all */
	lf_atomic_u64 nspill;   /* (a) entries on spill, never too few */
	lf_atomic_u64 npending; /* (a) entries on fresh and buckets; holder */
	lf_atomic_u64 retired;  /* (a) retire() calls; owner stores */
	lf_atomic_u64 held_state; /* (a) state word an advance was refused at */
	lf_atomic_u64 held_count; /* (a) refusals at held_state */
	struct lf_epoch_domain *domain; /* (i) set once, at first register */
	struct lf_epoch_record *next;   /* (i) immutable once published */
} LF_CACHE_ALIGNED;

struct lf_epoch_domain {
	lf_atomic_u64 epoch LF_CACHE_ALIGNED;   /* (a) the global epoch */
	lf_atomic_ptr records LF_CACHE_ALIGNED; /* (a) push-only record list */
	lf_atomic_ptr orphans;  /* (a) entries of unregistered records */
	lf_atomic_u64 norphans; /* (a) entries on orphans, never too few */
	lf_atomic_u32 barrier;  /* (a) 1 while a barrier runs (one at a time) */
	lf_atomic_u64 advances; /* (a) statistics */
	lf_atomic_u64 refused;  /* (a) advance attempts refused */
	uint32_t poll_every;    /* (i) retire() polls after this many */
	uint64_t advance_at;    /* (i) its polls advance from this many */
	bool asym;              /* (i) asymmetric read side (heavy barrier) */
};

struct lf_epoch_stats {
	uint64_t epoch;        /* the global epoch */
	uint64_t participants; /* registered records */
	uint64_t active;       /* participants inside a section */
	uint64_t pending;      /* callbacks waiting, orphans included */
	uint64_t orphans;      /* of which handed over by unregister */
	uint64_t advances;     /* successful advances */
	uint64_t refused;      /* advance attempts refused */
	uint64_t held_back; /* the most refusals by one stalled participant */
};

struct lf_epoch_record_stats {
	bool registered;
	bool active;
	uint64_t epoch;     /* epoch of the current section, if active */
	uint64_t held_back; /* advance attempts refused at that epoch */
	uint64_t pending;   /* callbacks waiting on this record */
	uint64_t retired;   /* retire() calls, ever */
};

/* An auto-poll advances once its record holds this many polls' worth. */
#define LF_EPOCH_ADVANCE_POLLS 128

/*
 * The mode is LF_EPOCH_AUTO (FENCED if built with LF_EPOCH_FORCE_FENCED);
 * advance_at is LF_EPOCH_ADVANCE_POLLS * poll_every.
 */
void lf_epoch_domain_init(struct lf_epoch_domain *d, uint32_t poll_every);
void lf_epoch_domain_init_mode(struct lf_epoch_domain *d, uint32_t poll_every,
			       enum lf_epoch_mode mode);
/*
 * Set advance_at (at least 1): the stamped entries from which retire()'s
 * polls advance the epoch (E7). Before any record registers.
 */
void lf_epoch_domain_set_advance_at(struct lf_epoch_domain *d,
				    uint64_t advance_at);
/* True if d's read side is asymmetric (the advancer runs a heavy barrier). */
bool lf_epoch_domain_asymmetric(const struct lf_epoch_domain *d);

/* Register rec (zero-filled, or unregistered from this domain). */
int lf_epoch_register(struct lf_epoch_domain *d, struct lf_epoch_record *rec);
/* Claim an unregistered record of d, or NULL if there is none. */
struct lf_epoch_record *lf_epoch_recycle(struct lf_epoch_domain *d);
/* Leave d; pending callbacks are handed to the domain (E5). */
int lf_epoch_unregister(struct lf_epoch_record *rec);

/* Read-side sections; nestable. */
static inline int lf_epoch_enter(struct lf_epoch_record *rec);
static inline int lf_epoch_exit(struct lf_epoch_record *rec);
static inline bool lf_epoch_in_section(const struct lf_epoch_record *rec)
{
	return rec->nest != 0;
}

/* Retire entry: fn(entry) runs once no section can still see it (E3). */
int lf_epoch_retire(struct lf_epoch_record *rec, struct lf_epoch_entry *entry,
		    lf_epoch_fn fn);
/*
 * Try to advance the epoch once; true if it moved (by us or another). An
 * explicit call: the heavy barrier's cost is the caller's choice.
 */
bool lf_epoch_try_advance(struct lf_epoch_domain *d);
/*
 * File the fresh entries, try to advance if a bucket waits, then run the
 * ready callbacks; returns how many ran.
 */
int lf_epoch_poll(struct lf_epoch_record *rec);
/* Wait until every section active at the call has ended. */
int lf_epoch_synchronize(struct lf_epoch_record *rec);
/*
 * Run every callback pending in the domain when called (E6), on this
 * thread, and those that they retire on rec; returns once all have run.
 */
int lf_epoch_barrier(struct lf_epoch_record *rec);

void lf_epoch_stats(struct lf_epoch_domain *d, struct lf_epoch_stats *out);
void lf_epoch_record_stats(struct lf_epoch_record *rec,
			   struct lf_epoch_record_stats *out);

/* ---- the read side, inline: it is the hot path ---- */

static inline int lf_epoch_enter(struct lf_epoch_record *rec)
{
	if (rec->nest != 0) {
		if (LF_UNLIKELY(rec->nest == UINT32_MAX))
			return LF_EPOCH_ENEST;
		rec->nest++;
		return LF_EPOCH_OK;
	}
	/* Relaxed: written by this thread only (register/unregister). */
	if (LF_UNLIKELY(lf_load_u32(&rec->in_use, LF_RELAXED) == 0))
		return LF_EPOCH_ENOTREG;
	/*
	 * Acquire: the section's loads come after this one, so the announced
	 * epoch is never newer than what the section reads; a stale (smaller)
	 * epoch only delays reclamation (E3). A plain load on x86-64.
	 */
	uint64_t g = lf_load_u64(&rec->domain->epoch, LF_ACQUIRE);
	/*
	 * Relaxed: the announcement. It must be visible to an advancer before
	 * this section's loads of shared pointers are satisfied (store-load
	 * order). Asymmetric: the advancer's heavy barrier between its epoch
	 * read and its scan in lf_epoch_try_advance() supplies it; a compiler
	 * barrier keeps the compiler from moving the section's loads above
	 * the store. Fenced: a seq_cst fence, which pairs with the seq_cst
	 * scan in lf_epoch_try_advance().
	 */
	lf_store_u64(&rec->state, lf_epoch_state(g), LF_RELAXED);
	if (LF_LIKELY(rec->asym))
		lf_compiler_barrier();
	else
		lf_fence_seq_cst();
	rec->nest = 1;
	return LF_EPOCH_OK;
}

static inline int lf_epoch_exit(struct lf_epoch_record *rec)
{
	if (LF_UNLIKELY(rec->nest == 0))
		return LF_EPOCH_ENOTIN;
	if (--rec->nest == 0) {
		/*
		 * Release: the section's reads happen-before any reclamation
		 * that follows an advance which saw this store. Pairs with the
		 * acquire (or seq_cst) scan in lf_epoch_try_advance().
		 */
		lf_store_u64(&rec->state, 0, LF_RELEASE);
	}
	return LF_EPOCH_OK;
}

#endif /* LF_EPOCH_H */
